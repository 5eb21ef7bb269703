--- IBGateway and OptionsDetector: Progressing until the Ready condition exists.
local ready = condition("Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
