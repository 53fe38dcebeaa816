{{/* The name of every resource: the release name unless overridden. */}}
{{- define "ps.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ps.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ps.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ps.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "ps.labels" -}}
{{ include "ps.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The image the service container runs: by digest, always. */}}
{{- define "ps.image" -}}
{{- if eq .Values.mode "overlay" -}}
{{- printf "%s@%s" .Values.base.repository .Values.base.digest -}}
{{- else -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- end -}}
{{- end -}}

{{/* The probe path: probes.<kind>.path, else "<route.path>/". */}}
{{- define "ps.probePath" -}}
{{- $probe := index .root.Values.probes .kind -}}
{{- if $probe.path -}}
{{- $probe.path -}}
{{- else -}}
{{- printf "%s/" (trimSuffix "/" .root.Values.route.path) -}}
{{- end -}}
{{- end -}}

{{- define "ps.probe" -}}
{{- $probe := index .root.Values.probes .kind -}}
httpGet:
  path: {{ include "ps.probePath" . | quote }}
  port: http
initialDelaySeconds: {{ $probe.initialDelaySeconds }}
periodSeconds: {{ $probe.periodSeconds }}
timeoutSeconds: {{ $probe.timeoutSeconds }}
failureThreshold: {{ $probe.failureThreshold }}
{{- end -}}

{{/* The container security context shared by the service and the fetcher. */}}
{{- define "ps.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
