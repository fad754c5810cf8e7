{{/* Secret settings as files, never as environment values: VIGIL_<NAME>_FILE for each key
     of the Secret (mounted at /etc/vigil/secrets) or, with the Vault agent injector, of
     Vault's secret (rendered by the agent's init container to /vault/secrets/<key>, once,
     before Vigil starts). The backup S3 keys go only to the backup pod.
     include "vigil.secretFilesEnv" (list . "app"|"backup") */}}
{{- define "vigil.secretFilesEnv" -}}
{{- $root := index . 0 -}}
{{- $vaultKeys := include "vigil.vaultKeys" . | fromJsonArray -}}
{{- if eq (index . 1) "backup" }}
{{- /* Only the backup's own: its S3 keys, from Vault or from backup.s3.existingSecret. */}}
{{- range $key := list "access-key-id" "secret-access-key" }}
{{- if has (printf "backup-s3-%s" $key) $vaultKeys }}
- name: VIGIL_BACKUP_S3_{{ $key | upper | replace "-" "_" }}_FILE
  value: /vault/secrets/backup-s3-{{ $key }}
{{- else if $root.Values.backup.s3.existingSecret }}
- name: VIGIL_BACKUP_S3_{{ $key | upper | replace "-" "_" }}_FILE
  value: /etc/vigil/backup-s3/{{ $key }}
{{- end }}
{{- end }}
{{- else }}
{{- $fromSecret := concat (list "jwt-secret" "database-url" "redis-url") $root.Values.secrets.extraKeys (keys $root.Values.secrets.extra | sortAlpha) | uniq -}}
{{- range $key := $fromSecret }}
{{- if not (has $key $vaultKeys) }}
- name: VIGIL_{{ $key | upper | replace "-" "_" }}_FILE
  value: /etc/vigil/secrets/{{ $key }}
{{- end }}
{{- end }}
{{- range $key := $vaultKeys }}
{{- if not (hasPrefix "backup-s3-" $key) }}
- name: VIGIL_{{ $key | upper | replace "-" "_" }}_FILE
  value: /vault/secrets/{{ $key }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Vault keys this pod gets, as a JSON list (the backup S3 keys only for backups). */}}
{{- define "vigil.vaultKeys" -}}
{{- $root := index . 0 -}}
{{- $keys := list -}}
{{- if $root.Values.vault.injector.enabled -}}
{{- range $key := $root.Values.vault.injector.keys -}}
{{- if or (eq (index $ 1) "backup") (not (hasPrefix "backup-s3-" $key)) -}}
{{- $keys = append $keys $key -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $keys -}}
{{- end -}}

{{/* Pod annotations: podAnnotations, and the Vault agent injector's when enabled (init
     container only, `agent-pre-populate-only`: Vigil reads its secrets once at start-up,
     and Jobs finish). The agent logs in with a projected service account token
     (the volume vault-token); Vigil's own containers get no token.
     And the service mesh's (_mesh.tpl; a Job passes a third element "job").
     include "vigil.podAnnotations" (list . "app"|"backup" ["job"]) */}}
{{- define "vigil.podAnnotations" -}}
{{- $root := index . 0 -}}
{{- $vault := $root.Values.vault.injector -}}
{{- $annotations := dict -}}
{{- if $vault.enabled -}}
{{- $_ := set $annotations "vault.hashicorp.com/agent-inject" "true" -}}
{{- $_ := set $annotations "vault.hashicorp.com/agent-pre-populate-only" "true" -}}
{{- $_ := set $annotations "vault.hashicorp.com/role" $vault.role -}}
{{- $_ := set $annotations "vault.hashicorp.com/agent-service-account-token-volume-name" "vault-token" -}}
{{- $_ := set $annotations "vault.hashicorp.com/agent-run-as-user" (toString $root.Values.securityContext.runAsUser) -}}
{{- $_ := set $annotations "vault.hashicorp.com/agent-run-as-group" (toString $root.Values.securityContext.runAsGroup) -}}
{{- range $key := include "vigil.vaultKeys" . | fromJsonArray -}}
{{- $_ := set $annotations (printf "vault.hashicorp.com/agent-inject-secret-%s" $key) $vault.secretPath -}}
{{- $_ := set $annotations (printf "vault.hashicorp.com/agent-inject-template-%s" $key) (printf "{{- with secret %q -}}{{ index .Data.data %q }}{{- end -}}" $vault.secretPath $key) -}}
{{- end -}}
{{- $annotations = merge $annotations $vault.annotations -}}
{{- end -}}
{{- $meshRole := ternary "job" "app" (or (eq (index . 1) "backup") (and (gt (len .) 2) (eq (index . 2) "job"))) -}}
{{- $annotations = merge $annotations (include "vigil.meshAnnotations" (list $root $meshRole) | fromYaml) -}}
{{- $annotations = merge $annotations $root.Values.podAnnotations -}}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The projected token the Vault agent logs in with (mounted only into the agent). */}}
{{- define "vigil.vaultVolumes" -}}
{{- if .Values.vault.injector.enabled }}
- name: vault-token
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3600
{{- end }}
{{- end -}}
