{{/* The labels of one component's objects and pods: commons.labels (dict "root" $ "component" "api") */}}
{{- define "commons.labels" -}}
app.kubernetes.io/name: commons
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* What every pod of the chart runs with: no service account token, non-root, the runtime's seccomp profile. */}}
{{- define "commons.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .uid }}
  runAsGroup: {{ .uid }}
  fsGroup: {{ .uid }}
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{/* Every container: a read-only root file system, no privilege escalation, no capability. */}}
{{- define "commons.containerSecurity" -}}
securityContext:
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: ["ALL"]
{{- end }}
