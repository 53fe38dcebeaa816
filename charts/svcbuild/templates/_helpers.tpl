{{- define "svcbuild.buildNamespace" -}}
{{- default .Release.Namespace .Values.buildNamespace -}}
{{- end -}}

{{- define "svcbuild.selectorLabels" -}}
app.kubernetes.io/name: "svcbuild"
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/component: "api"
{{- end -}}

{{- define "svcbuild.labels" -}}
app.kubernetes.io/name: "svcbuild"
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{- end -}}

{{- define "svcbuild.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* The configuration file: the user's config plus the cluster facts this chart owns. */}}
{{- define "svcbuild.config" -}}
{{- $cluster := dict
  "buildNamespace" (include "svcbuild.buildNamespace" .)
  "tenantNamespaces" .Values.tenantNamespaces
  "serviceAccounts" .Values.serviceAccounts
-}}
{{- toYaml (merge (dict "cluster" $cluster) (deepCopy .Values.config)) -}}
{{- end -}}
