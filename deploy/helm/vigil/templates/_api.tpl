{{/* The API's pod spec, shared by the API Deployment and its canary (mesh.yaml):
     include "vigil.apiPodSpec" (list . IMAGE) */}}
{{- define "vigil.apiPodSpec" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- include "vigil.podCommon" $root }}
containers:
  - name: api
    image: {{ $image }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args: ["api", "--host", "0.0.0.0", "--port", "8000", "--workers", "{{ $root.Values.api.workers }}"]
    ports:
      - name: http
        containerPort: 8000
        protocol: TCP
    env:
      {{- include "vigil.env" $root | nindent 6 }}
    startupProbe:
      httpGet: {path: /health, port: http}
      periodSeconds: 2
      failureThreshold: 60
    livenessProbe:
      httpGet: {path: /health, port: http}
      periodSeconds: 10
      timeoutSeconds: 3
      failureThreshold: 3
    readinessProbe:
      httpGet: {path: /health/ready, port: http}
      periodSeconds: 5
      timeoutSeconds: 3
      failureThreshold: 2
    resources:
      {{- toYaml $root.Values.api.resources | nindent 6 }}
    securityContext:
      {{- include "vigil.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      {{- include "vigil.volumeMounts" $root | nindent 6 }}
volumes:
  {{- include "vigil.volumes" $root | nindent 2 }}
{{- end -}}
