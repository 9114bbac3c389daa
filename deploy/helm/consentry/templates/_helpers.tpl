{{/* The chart's name, at most 63 characters. */}}
{{- define "consentry.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's objects' name: the release name, with the chart's name unless it holds it. */}}
{{- define "consentry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the collector's pods. */}}
{{- define "consentry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "consentry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: collector
{{- end -}}

{{/* Labels of every object. */}}
{{- define "consentry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "consentry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: consentry
{{- end -}}

{{/* The image reference: repository and digest, or repository and tag. */}}
{{- define "consentry.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the consent signing key and secret. */}}
{{- define "consentry.consentSecret" -}}
{{- default (printf "%s-consent" (include "consentry.fullname" .)) .Values.consent.existingSecret -}}
{{- end -}}

{{/* The service account's name. */}}
{{- define "consentry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "consentry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The admin port's scheme: HTTPS when TLS is on. */}}
{{- define "consentry.adminScheme" -}}
{{- if .Values.tls.secretName -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* The Secret with the dashboard's users. */}}
{{- define "consentry.dashboardSecret" -}}
{{- default (printf "%s-dashboard" (include "consentry.fullname" .)) .Values.dashboard.credentialsSecret -}}
{{- end -}}

{{/*
consentry.seconds returns the seconds of .value, a duration in whole
seconds or minutes (30s, 2m), or fails naming .name.
*/}}
{{- define "consentry.seconds" -}}
{{- $v := .value | toString -}}
{{- if regexMatch "^[0-9]+s$" $v -}}
{{- trimSuffix "s" $v | int -}}
{{- else if regexMatch "^[0-9]+m$" $v -}}
{{- mul (trimSuffix "m" $v | int) 60 -}}
{{- else -}}
{{- fail (printf "%s %q: write it in whole seconds or minutes, e.g. 30s or 2m" .name $v) -}}
{{- end -}}
{{- end -}}
