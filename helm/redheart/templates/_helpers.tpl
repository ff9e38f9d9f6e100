{{/* Names */}}
{{- define "redheart.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "redheart.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- if .Values.autoscaling.hpa.enabled -}}
{{- $h := .Values.autoscaling.hpa -}}
{{- if and (kindIs "invalid" $h.targetCPUUtilizationPercentage) (kindIs "invalid" $h.targetMemoryUtilizationPercentage) (not $h.metrics) -}}
{{- fail "autoscaling.hpa.enabled needs a metric: targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or autoscaling.hpa.metrics" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "redheart.selectorLabels" -}}
app.kubernetes.io/name: {{ include "redheart.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "redheart.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "redheart.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: worker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}


{{- define "redheart.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "redheart.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- if .Values.autoscaling.hpa.enabled -}}
{{- $h := .Values.autoscaling.hpa -}}
{{- if and (kindIs "invalid" $h.targetCPUUtilizationPercentage) (kindIs "invalid" $h.targetMemoryUtilizationPercentage) (not $h.metrics) -}}
{{- fail "autoscaling.hpa.enabled needs a metric: targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or autoscaling.hpa.metrics" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "redheart.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}{{- $repo = printf "%s/%s" .Values.image.registry $repo -}}{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default (ternary "cuda" "cpu" .Values.gpu.enabled) .Values.image.tag) -}}
{{- end -}}
{{- if .Values.autoscaling.hpa.enabled -}}
{{- $h := .Values.autoscaling.hpa -}}
{{- if and (kindIs "invalid" $h.targetCPUUtilizationPercentage) (kindIs "invalid" $h.targetMemoryUtilizationPercentage) (not $h.metrics) -}}
{{- fail "autoscaling.hpa.enabled needs a metric: targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or autoscaling.hpa.metrics" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the librdkafka JSON (consumer/producer) when kafkaAuth is enabled. */}}
{{- define "redheart.kafkaSecretName" -}}
{{- default (printf "%s-kafka" (include "redheart.fullname" .)) .Values.kafkaAuth.existingSecret -}}
{{- end -}}

{{/* librdkafka security properties built from kafkaAuth (a dict). */}}
{{- define "redheart.kafkaSecurity" -}}
{{- $a := .Values.kafkaAuth -}}
{{- $p := dict "security.protocol" $a.securityProtocol -}}
{{- if $a.sasl.mechanism -}}
{{- $_ := set $p "sasl.mechanism" $a.sasl.mechanism -}}
{{- $_ := set $p "sasl.username" $a.sasl.username -}}
{{- $_ := set $p "sasl.password" $a.sasl.password -}}
{{- end -}}
{{- if $a.tls.existingSecret -}}
{{- $_ := set $p "ssl.ca.location" (printf "%s/%s" $a.tls.mountPath $a.tls.caKey) -}}
{{- if $a.tls.certKey -}}{{- $_ := set $p "ssl.certificate.location" (printf "%s/%s" $a.tls.mountPath $a.tls.certKey) -}}{{- end -}}
{{- if $a.tls.keyKey -}}{{- $_ := set $p "ssl.key.location" (printf "%s/%s" $a.tls.mountPath $a.tls.keyKey) -}}{{- end -}}
{{- if .Values.autoscaling.hpa.enabled -}}
{{- $h := .Values.autoscaling.hpa -}}
{{- if and (kindIs "invalid" $h.targetCPUUtilizationPercentage) (kindIs "invalid" $h.targetMemoryUtilizationPercentage) (not $h.metrics) -}}
{{- fail "autoscaling.hpa.enabled needs a metric: targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or autoscaling.hpa.metrics" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $p -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: the drain deadline plus a margin. */}}
{{- define "redheart.terminationGrace" -}}
{{- add (int (ceil .Values.config.shutdownTimeoutS)) (int .Values.terminationGracePeriodMarginSeconds) -}}
{{- end -}}

{{/* Rendering guards. */}}
{{- define "redheart.validate" -}}
{{- $c := .Values.config -}}
{{- $onVolume := or (eq $c.recoveryDir "/tmp") (hasPrefix "/tmp/" $c.recoveryDir) -}}
{{- range .Values.extraVolumeMounts -}}
{{- if or (eq $c.recoveryDir .mountPath) (hasPrefix (printf "%s/" (trimSuffix "/" .mountPath)) $c.recoveryDir) -}}
{{- $onVolume = true -}}
{{- end -}}
{{- end -}}
{{- if not $onVolume -}}
{{- fail (printf "config.recoveryDir=%s must be on a pod volume so the crash marker survives a container restart: under /tmp (the chart's emptyDir) or an extraVolumeMounts path" $c.recoveryDir) -}}
{{- end -}}
{{- if and .Values.livenessProbe.enabled (ge (float64 .Values.livenessProbe.timeoutSeconds) (float64 $c.httpTimeoutS)) -}}
{{- fail "livenessProbe.timeoutSeconds must be below config.httpTimeoutS (the worker's per-connection deadline)" -}}
{{- end -}}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}
{{- fail "autoscaling.keda.enabled and autoscaling.hpa.enabled are mutually exclusive: KEDA creates its own HPA for the Deployment. Enable one of them." -}}
{{- end -}}
{{- if and (eq .Values.models.source "existingClaim") (not .Values.models.existingClaim) -}}
{{- fail "models.source=existingClaim needs models.existingClaim (the PVC name)" -}}
{{- end -}}
{{- if and .Values.kafkaAuth.enabled (not .Values.kafkaAuth.existingSecret) .Values.kafkaAuth.sasl.mechanism (not .Values.kafkaAuth.sasl.password) -}}
{{- fail "kafkaAuth.sasl.mechanism is set but kafkaAuth.sasl.password is empty: set it (e.g. --set-file / --set) or use kafkaAuth.existingSecret" -}}
{{- end -}}
{{- if .Values.autoscaling.hpa.enabled -}}
{{- $h := .Values.autoscaling.hpa -}}
{{- if and (kindIs "invalid" $h.targetCPUUtilizationPercentage) (kindIs "invalid" $h.targetMemoryUtilizationPercentage) (not $h.metrics) -}}
{{- fail "autoscaling.hpa.enabled needs a metric: targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or autoscaling.hpa.metrics" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Kafka broker ports for the NetworkPolicy: networkPolicy.egress.kafkaPorts, else those of config.bootstrapServers. */}}
{{- define "redheart.kafkaPorts" -}}
{{- $ports := list -}}
{{- if .Values.networkPolicy.egress.kafkaPorts -}}
{{- range .Values.networkPolicy.egress.kafkaPorts -}}{{- $ports = append $ports (int .) -}}{{- end -}}
{{- else -}}
{{- range splitList "," .Values.config.bootstrapServers -}}
{{- $p := trimPrefix ":" (regexFind ":[0-9]+$" (trim .)) -}}
{{- $ports = append $ports (int (default "9092" $p)) -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $ports) -}}
{{- end -}}

{{/* Helper LLM ports for the NetworkPolicy: networkPolicy.egress.helperLlmPorts, else the port of config.helperLlmUrl. */}}
{{- define "redheart.helperLlmPorts" -}}
{{- $ports := list -}}
{{- if .Values.networkPolicy.egress.helperLlmPorts -}}
{{- range .Values.networkPolicy.egress.helperLlmPorts -}}{{- $ports = append $ports (int .) -}}{{- end -}}
{{- else if .Values.config.helperLlmUrl -}}
{{- $u := urlParse .Values.config.helperLlmUrl -}}
{{- $p := trimPrefix ":" (regexFind ":[0-9]+$" $u.host) -}}
{{- $ports = append $ports (int (default (ternary "443" "80" (eq (lower $u.scheme) "https")) $p)) -}}
{{- end -}}
{{- toJson $ports -}}
{{- end -}}
