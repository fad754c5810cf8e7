{{/* Service mesh (mesh.provider: istio | linkerd; docs/deploy.md "Service mesh").
     Long-running pods join the mesh; Jobs (migrations, backups) stay out of it, since a
     sidecar that never exits keeps a Job from completing. */}}

{{/* Pod labels: Istio's injection label. include "vigil.meshLabels" (list . "app"|"job") */}}
{{- define "vigil.meshLabels" -}}
{{- $root := index . 0 -}}
{{- if eq $root.Values.mesh.provider "istio" }}
sidecar.istio.io/inject: {{ ternary "true" "false" (eq (index . 1) "app") | quote }}
{{- end }}
{{- end -}}

{{/* Pod annotations as YAML (merged by vigil.podAnnotations): Linkerd's injection and its
     default inbound policy. include "vigil.meshAnnotations" (list . "app"|"job") */}}
{{- define "vigil.meshAnnotations" -}}
{{- $root := index . 0 -}}
{{- if eq $root.Values.mesh.provider "linkerd" -}}
{{- if eq (index . 1) "app" }}
linkerd.io/inject: enabled
config.linkerd.io/default-inbound-policy: {{ $root.Values.mesh.linkerd.defaultInboundPolicy }}
{{- else }}
linkerd.io/inject: disabled
{{- end }}
{{- end }}
{{- end -}}

{{/* Labels the API's Service selects. With an Istio canary: every pod serving the API
     (stable and canary: DestinationRule subsets by `version`); else the API component. */}}
{{- define "vigil.apiCanary" -}}
{{- if and (eq .Values.mesh.provider "istio") .Values.mesh.istio.canary.enabled -}}true{{- end -}}
{{- end -}}

{{- define "vigil.apiServiceSelector" -}}
{{- if include "vigil.apiCanary" . -}}
app.kubernetes.io/name: {{ include "vigil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
vigil.io/serves: api
{{- else -}}
{{- include "vigil.selector" (list . "api") -}}
{{- end -}}
{{- end -}}

{{/* Extra labels of the stable API pods with a canary. */}}
{{- define "vigil.apiTrackLabels" -}}
{{- if include "vigil.apiCanary" . }}
vigil.io/serves: api
version: stable
{{- end }}
{{- end -}}

{{/* Namespace labels of the mesh's control plane (for the NetworkPolicies). */}}
{{- define "vigil.meshControlPlane" -}}
{{- $selector := .Values.mesh.controlPlaneNamespaceSelector -}}
{{- if not $selector -}}
{{- $selector = dict "kubernetes.io/metadata.name" (ternary "istio-system" "linkerd" (eq .Values.mesh.provider "istio")) -}}
{{- end -}}
{{- toYaml $selector -}}
{{- end -}}
