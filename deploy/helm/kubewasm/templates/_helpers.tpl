{{/*
Names and labels shared by every template.
*/}}

{{/* The chart's name, the app.kubernetes.io/name label. */}}
{{- define "kubewasm.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: the release name if it contains the chart's
name (`helm install kubewasm` gives the names of deploy/), else
<release>-<name>. Kubernetes names of this kind hold at most 63 characters.
*/}}
{{- define "kubewasm.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "kubewasm.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object: the kustomize base's, and Helm's own. */}}
{{- define "kubewasm.labels" -}}
app.kubernetes.io/name: {{ include "kubewasm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the host's pods (Deployment, PodDisruptionBudget,
Service, pod anti-affinity): those of deploy/, without the release name, so
that a Deployment the kustomize base created can be taken over by a release
(a Deployment's selector cannot change). Hence one release per namespace.
*/}}
{{- define "kubewasm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubewasm.name" . }}
app.kubernetes.io/component: host
{{- end }}

{{/* The host's image: by digest if one is set, else by tag (appVersion by default). */}}
{{- define "kubewasm.image" -}}
{{- with .Values.image }}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository (.tag | default $.Chart.AppVersion | toString) }}
{{- end }}
{{- end }}
{{- end }}
