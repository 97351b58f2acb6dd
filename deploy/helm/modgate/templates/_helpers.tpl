{{/* The release's resource name. */}}
{{- define "modgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: stable across upgrades. */}}
{{- define "modgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "modgate.labels" -}}
{{ include "modgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "modgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
modgate.yaml: the user's config with the chart's settings for storage and
state. Secrets are named by environment variable, never written here.
*/}}
{{- define "modgate.config" -}}
{{- $cfg := deepCopy (default dict .Values.config) -}}
{{- $up := default dict $cfg.upstream -}}
{{- $sum := default dict $cfg.sumdb -}}
{{- $_ := required "config.upstream.goproxy is required: the GOPROXY list modgate fetches from (what `go env GOPROXY` prints where your developers build)" $up.goproxy -}}
{{- $_ := required "config.sumdb.gosumdb is required: the checksum database to verify against (what `go env GOSUMDB` prints), or off" $sum.gosumdb -}}
{{- if or (hasKey $cfg "listen") (hasKey $cfg "data_dir") -}}
{{- fail "config.listen and config.data_dir are set by the chart (service.port, the data volume): leave them out" -}}
{{- end -}}
{{- if .Values.storage.s3.enabled -}}
{{- $s3 := .Values.storage.s3 -}}
{{- $_ := required "storage.s3.bucket is required when storage.s3.enabled is true" $s3.bucket -}}
{{- $_ := required "storage.s3.existingSecret is required when storage.s3.enabled is true: a Secret with the access key and secret key" $s3.existingSecret -}}
{{- $_ := set $cfg "storage" (dict "type" "s3" "s3" (dict "endpoint" $s3.endpoint "region" $s3.region "bucket" $s3.bucket "prefix" $s3.prefix "path_style" $s3.pathStyle "access_key_env" "MODGATE_S3_ACCESS_KEY" "secret_key_env" "MODGATE_S3_SECRET_KEY")) -}}
{{- end -}}
{{- if .Values.postgres.existingSecret -}}
{{- $_ := set $cfg "state" (dict "postgres" (dict "dsn_env" "MODGATE_POSTGRES_DSN")) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
