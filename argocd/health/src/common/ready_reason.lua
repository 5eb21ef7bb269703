--- IBGateway and OptionsDetector: a Ready that is not True; `waiting` lists the reasons
--- that clear by themselves (Progressing), any other is Degraded.
if waiting[ready.reason] then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = tostring(ready.reason) .. ": " .. tostring(ready.message)
return hs
