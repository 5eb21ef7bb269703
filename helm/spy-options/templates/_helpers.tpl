{{/* Names, labels and shared blocks of the spy-options chart. */}}

{{- define "spy-options.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "spy-options.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: spyoptions
{{- end -}}

{{/* selectorLabels COMPONENT: stable labels a Deployment selects its pods by. */}}
{{- define "spy-options.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "spy-options.operatorName" -}}
{{- printf "%s-operator" (include "spy-options.fullname" .) -}}
{{- end -}}

{{- define "spy-options.backendName" -}}
{{- printf "%s-backend" (include "spy-options.fullname" .) -}}
{{- end -}}

{{- define "spy-options.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "spy-options.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* image ROOT IMAGEVALUES: registry/repository:tag */}}
{{- define "spy-options.image" -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if .root.Values.image.registry -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context of Pod Security Standards "restricted". */}}
{{- define "spy-options.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "spy-options.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 1000
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Namespaces the operator watches and the workload policies cover (list). */}}
{{- define "spy-options.workloadNamespaces" -}}
{{- $ns := .Values.networkPolicy.workloadNamespaces | default .Values.operator.watchNamespaces -}}
{{- toJson (default (list) $ns) -}}
{{- end -}}

{{/* enabled ROOT SETTING API: true when SETTING is true, or auto and the API is served. */}}
{{- define "spy-options.enabled" -}}
{{- $v := toString .setting -}}
{{- if or (eq $v "true") (and (eq $v "auto") (.root.Capabilities.APIVersions.Has .api)) -}}
true
{{- end -}}
{{- end -}}

{{- define "spy-options.approvalSecretName" -}}
{{- default (printf "%s-approval-key" (include "spy-options.fullname" .)) .Values.approval.existingSecret -}}
{{- end -}}

{{- define "spy-options.webhookName" -}}
{{- printf "%s-webhook" (include "spy-options.operatorName" .) -}}
{{- end -}}
