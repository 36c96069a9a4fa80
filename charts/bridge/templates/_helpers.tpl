{{/* Chart name. */}}
{{- define "bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-name prefixed unless it already contains the chart name. */}}
{{- define "bridge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Selector labels. */}}
{{- define "bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Common labels. */}}
{{- define "bridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: mesh-ingress
{{- end -}}

{{/* ServiceAccount name. */}}
{{- define "bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bridge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Host legacy callers reach the bridge at. */}}
{{- define "bridge.advertiseHost" -}}
{{- if .Values.advertiseHost -}}
{{- .Values.advertiseHost -}}
{{- else if and .Values.istio.enabled .Values.istio.legacyHosts -}}
{{- first .Values.istio.legacyHosts -}}
{{- else -}}
{{- printf "%s.%s.svc.cluster.local" (include "bridge.fullname" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* Port advertised with the host. */}}
{{- define "bridge.advertisePort" -}}
{{- if .Values.advertisePort -}}
{{- .Values.advertisePort -}}
{{- else if .Values.istio.enabled -}}
{{- .Values.istio.gateway.port -}}
{{- else -}}
{{- .Values.ports.http -}}
{{- end -}}
{{- end -}}

{{/* The bridge config file: chart-owned settings, then .Values.config merged over them. */}}
{{- define "bridge.config" -}}
{{- $own := dict
  "eureka" (dict
    "listen" (printf "0.0.0.0:%v" .Values.ports.eureka)
    "advertise_host" (include "bridge.advertiseHost" .)
    "advertise_port" (include "bridge.advertisePort" . | int))
  "admin" (dict "listen" (printf "0.0.0.0:%v" .Values.ports.admin)) -}}
{{- if .Values.discovery.enabled -}}
{{- $d := dict "enabled" true "namespaces" .Values.discovery.namespaces -}}
{{- if .Values.discovery.labelSelector -}}{{- $_ := set $d "label_selector" .Values.discovery.labelSelector -}}{{- end -}}
{{- if .Values.mapping -}}{{- $_ := set $d "mapping_file" "/etc/bridge/mapping.yaml" -}}{{- end -}}
{{- $_ := set $own "discovery" $d -}}
{{- end -}}
{{- if eq .Values.store.kind "kubernetes" -}}
{{- $_ := set $own "store" (dict "kind" "kubernetes" "namespace" .Release.Namespace "lease_write_interval" (.Values.store.leaseWriteInterval | int)) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $own (deepCopy .Values.config)) -}}
{{- end -}}
