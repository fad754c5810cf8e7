{{/* Names, labels and the pieces every Vigil pod shares. */}}

{{- define "vigil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vigil.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "vigil.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "vigil.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vigil.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "vigil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vigil
{{- end -}}

{{/* Selector labels of one component: include "vigil.selector" (list . "api") */}}
{{- define "vigil.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "vigil.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "vigil.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "vigil.secretName" -}}
{{- default (printf "%s-secrets" (include "vigil.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "vigil.serviceAccountName" -}}
{{- default (include "vigil.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The pod-level securityContext: the image's user (10001), never root. */}}
{{- define "vigil.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- if hasKey . "vigilSysctls" }}
sysctls:
  {{- toYaml .vigilSysctls | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Every container: read-only root filesystem, no privilege escalation, no capabilities. */}}
{{- define "vigil.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Settings: non-secret ones from .Values.config as plain variables (a change restarts
     the pods), secret ones as files (the *_FILE convention of vigil.settings), so no
     password sits in the environment. */}}
{{- define "vigil.env" -}}
- name: VIGIL_DATA_DIR
  value: /data
- name: TMPDIR
  value: /tmp
{{- include "vigil.secretFilesEnv" (list . "app") }}
{{- range $name, $value := .Values.config }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}


{{/* The writable directories of a read-only root filesystem, and the secrets. */}}
{{- define "vigil.volumeMounts" -}}
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp
- name: secrets
  mountPath: /etc/vigil/secrets
  readOnly: true
{{- end -}}

{{- define "vigil.volumes" -}}
- name: data
  emptyDir:
    sizeLimit: {{ .Values.scratch.dataSizeLimit }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratch.tmpSizeLimit }}
- name: secrets
  secret:
    secretName: {{ include "vigil.secretName" . }}
    defaultMode: 0440
{{- include "vigil.vaultVolumes" . }}
{{- end -}}

{{/* Pod spec fields shared by every Vigil pod. */}}
{{- define "vigil.podCommon" -}}
serviceAccountName: {{ include "vigil.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- include "vigil.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}


{{- define "vigil.databaseUrl" -}}
{{- if .Values.postgresql.enabled -}}
{{- printf "postgresql://%s:%s@%s-postgresql:5432/%s" .Values.postgresql.auth.username .Values.postgresql.auth.password (include "vigil.fullname" .) .Values.postgresql.auth.database -}}
{{- else -}}
{{- .Values.externalDatabase.url -}}
{{- end -}}
{{- end -}}

{{- define "vigil.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:6379/0" (include "vigil.fullname" .) -}}
{{- else -}}
{{- .Values.externalRedis.url -}}
{{- end -}}
{{- end -}}
