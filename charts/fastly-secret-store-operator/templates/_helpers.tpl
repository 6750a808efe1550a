{{/* The chart's name, or nameOverride. */}}
{{- define "fsso.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: fullnameOverride, else the name prefixed by the release name unless it already
contains it. */}}
{{- define "fsso.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "fsso.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The labels a selector matches: never commonLabels, so that changing those never touches a selector. */}}
{{- define "fsso.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fsso.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The labels of every object the chart renders: the selector labels, Helm's, and commonLabels. */}}
{{- define "fsso.labels" -}}
{{ include "fsso.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The image reference: repository@digest when a digest is given (the tag is then ignored), else
repository:tag (the chart's appVersion by default). */}}
{{- define "fsso.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "fsso.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fsso.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator's ServiceAccount, as the subject of its RoleBindings and ClusterRoleBinding. */}}
{{- define "fsso.subjects" -}}
- kind: ServiceAccount
  name: {{ include "fsso.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* The Secret, in the operator's namespace, where the operator keeps its fingerprint HMAC key. */}}
{{- define "fsso.fingerprintKeySecret" -}}
fastly-secret-store-operator-fingerprint-key
{{- end -}}

{{/* What the operator does in each namespace it serves (a ClusterRole's or each Role's rules). */}}
{{- define "fsso.servedNamespaceRules" -}}
# The custom resource: watched, and patched for finalizers and Kopf's progress annotations.
- apiGroups: [fastly.operator.dev]
  resources: [fastlysecretstores]
  verbs: [get, list, watch, patch]
- apiGroups: [fastly.operator.dev]
  resources: [fastlysecretstores/status]
  verbs: [patch]
# Secrets: the API token and the entry values, referenced by user-chosen names and watched so that an edited
# Secret is pushed at once. RBAC cannot narrow this by label or by a name users choose. Read-only.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
# Kopf posts core v1 Events about each object.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{- define "fsso.accountRules" -}}
# FastlyAccounts (cluster-scoped): watched, patched for the finalizer that holds a deletion while they are used,
# and their status written.
- apiGroups: [fastly.operator.dev]
  resources: [fastlyaccounts]
  verbs: [get, list, watch, patch]
- apiGroups: [fastly.operator.dev]
  resources: [fastlyaccounts/status]
  verbs: [patch]
{{- end -}}

{{/* The operator's command-line arguments (the image's entrypoint is the operator's console script). */}}
{{- define "fsso.args" -}}
- run
{{- if .Values.watchNamespaces }}
{{- range .Values.watchNamespaces }}
- --namespace
- {{ . | quote }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
- --standalone
{{- if gt (int .Values.replicaCount) 1 }}
- --leader-elect
{{- end }}
- --liveness
- {{ printf "http://0.0.0.0:%d/healthz" (int .Values.health.port) | quote }}
{{- if .Values.metrics.enabled }}
- --metrics-port
- {{ .Values.metrics.port | quote }}
{{- end }}
{{- with .Values.fastly.endpoint }}
- --fastly-endpoint
- {{ . | quote }}
{{- end }}
{{- if .Values.fastly.trustApiSigningKey }}
- --trust-api-signing-key
{{- end }}
{{- with .Values.logFormat }}
- --log-format
- {{ . | quote }}
{{- end }}
{{- if eq .Values.logLevel "verbose" }}
- --verbose
{{- else if eq .Values.logLevel "debug" }}
- --debug
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Refuse values that would give a broken install, with a message saying what to do. */}}
{{- define "fsso.validate" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not (and .Values.metrics.enabled .Values.metrics.service.enabled)) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled and metrics.service.enabled" -}}
{{- end -}}
{{- if eq (int .Values.health.port) (int .Values.metrics.port) -}}
{{- fail "health.port and metrics.port must differ" -}}
{{- end -}}
{{- end -}}
