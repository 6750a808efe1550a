-- Argo CD health check for fastly.operator.dev/FastlySecretStore.
-- Install it as resource.customizations.health.fastly.operator.dev_FastlySecretStore in argocd-cm: with the
-- kustomize component next to this file, or pasted into Argo CD's Helm values (docs/install.md shows both).
-- It reads the object as kstatus does: a status for an older generation is stale; Stalled=True is a failure
-- that needs a person; Reconciling=True is work under way; then Ready.
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function message(c, default)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return default
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted"
  return hs
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

-- The first of these conditions that is True decides: a person must act, work is under way, or all is well.
local conditions = obj.status.conditions
for _, verdict in ipairs({{"Stalled", "Degraded"}, {"Reconciling", "Progressing"}, {"Ready", "Healthy"}}) do
  local c = condition(conditions, verdict[1])
  if c ~= nil and c.status == "True" then
    hs.status = verdict[2]
    hs.message = message(c, verdict[1])
    return hs
  end
end

-- Not ready, yet not stalled: the operator is still trying (a retry, a rate limit), with its reason.
hs.status = "Progressing"
hs.message = message(condition(conditions, "Ready"), "Waiting for the Ready condition")
return hs
