{{/*
Names and labels. Kubernetes names are at most 63 characters.
*/}}
{{- define "tracecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tracecar.fullname" -}}
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

{{- define "tracecar.injectorName" -}}
{{- printf "%s-injector" (include "tracecar.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{- define "tracecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tracecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: injector
{{- end -}}

{{- define "tracecar.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tracecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
The image, from the chart's values: "repository:tag".
*/}}
{{- define "tracecar.image" -}}
{{- printf "%s:%s" (required "image.repository is required" .image.repository) (required "image.tag is required" (toString .image.tag)) -}}
{{- end -}}

{{/*
The injected containers. One definition serves the injector (the ConfigMap below renders them
with the chart's values, and the webhook applies the pod's annotations to their args) and
static injection in a user's own templates. Both take a dict:
  values: the tracecar chart's values (.Values here; .Values.tracecar in a parent chart)
  pod:    optional per-pod settings, the annotations' equivalents: routes (list),
          samplingRules, excludeInboundPorts, excludeOutboundPorts, excludeOutboundCidrs, and
          serviceName (else the pod's "app" label, through the downward API)
*/}}
{{- define "tracecar.podSetting" -}}
{{- $pod := .pod | default dict -}}
{{- if hasKey $pod .key -}}{{- index $pod .key -}}{{- else -}}{{- .default -}}{{- end -}}
{{- end -}}

{{- define "tracecar.initContainer" -}}
{{- $v := .values -}}
{{- $s := $v.sidecar -}}
{{- $i := $v.interception -}}
{{- $pod := .pod | default dict -}}
name: {{ $i.name }}
image: {{ include "tracecar.image" $v | quote }}
imagePullPolicy: {{ $v.image.pullPolicy }}
args:
  - init-iptables
  - --proxy-uid
  - {{ $s.proxyUid | toString | quote }}
  - --inbound-port
  - {{ $s.inboundPort | toString | quote }}
  - --outbound-port
  - {{ $s.outboundPort | toString | quote }}
  - --admin-port
  - {{ $s.adminPort | toString | quote }}
  - --ipv6
  - {{ $i.ipv6 | quote }}
{{- with include "tracecar.podSetting" (dict "pod" $pod "key" "excludeInboundPorts" "default" $i.excludeInboundPorts) }}
  - --exclude-inbound-ports
  - {{ . | quote }}
{{- end }}
{{- with include "tracecar.podSetting" (dict "pod" $pod "key" "excludeOutboundPorts" "default" $i.excludeOutboundPorts) }}
  - --exclude-outbound-ports
  - {{ . | quote }}
{{- end }}
{{- with include "tracecar.podSetting" (dict "pod" $pod "key" "excludeOutboundCidrs" "default" $i.excludeOutboundCidrs) }}
  - --exclude-outbound-cidrs
  - {{ . | quote }}
{{- end }}
securityContext:
  runAsUser: 0
  runAsGroup: 0
  runAsNonRoot: false
  allowPrivilegeEscalation: false
  capabilities:
    add: [NET_ADMIN, NET_RAW]
    drop: [ALL]
{{- with $i.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "tracecar.sidecarContainer" -}}
{{- $v := .values -}}
{{- $s := $v.sidecar -}}
{{- $pod := .pod | default dict -}}
{{- $routes := $s.routes -}}
{{- if hasKey $pod "routes" }}{{ $routes = $pod.routes }}{{ end -}}
name: {{ $s.name }}
image: {{ include "tracecar.image" $v | quote }}
imagePullPolicy: {{ $v.image.pullPolicy }}
{{- if $s.native }}
restartPolicy: Always
{{- end }}
args:
  - run
  - --inbound
  - {{ printf "%s:%v" $s.inboundAddress $s.inboundPort | quote }}
  - --outbound
  - {{ printf "127.0.0.1:%v" $s.outboundPort | quote }}
  - --admin
  - {{ printf "0.0.0.0:%v" $s.adminPort | quote }}
{{- with $s.app }}
  - --app
  - {{ . | quote }}
{{- end }}
{{- range $routes }}
  - --route
  - {{ . | quote }}
{{- end }}
{{- with include "tracecar.podSetting" (dict "pod" $pod "key" "samplingRules" "default" $s.samplingRules) }}
  - --sampling-rules
  - {{ . | quote }}
{{- end }}
{{- range $s.extraArgs }}
  - {{ . | quote }}
{{- end }}
env:
  - name: K8S_POD_NAME
    valueFrom: {fieldRef: {fieldPath: metadata.name}}
  - name: K8S_NAMESPACE_NAME
    valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
  - name: K8S_NODE_NAME
    valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
  - name: K8S_POD_UID
    valueFrom: {fieldRef: {fieldPath: metadata.uid}}
  - name: OTEL_SERVICE_NAME
{{- if $pod.serviceName }}
    value: {{ $pod.serviceName | quote }}
{{- else }}
    valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
{{- end }}
{{- with $s.otlpEndpoint }}
  - name: OTEL_EXPORTER_OTLP_ENDPOINT
    value: {{ . | quote }}
{{- end }}
{{- with $s.propagators }}
  - name: OTEL_PROPAGATORS
    value: {{ . | quote }}
{{- end }}
{{- with $s.env }}
  {{- toYaml . | nindent 2 }}
{{- end }}
ports:
  - name: tracecar-admin
    containerPort: {{ $s.adminPort }}
    protocol: TCP
securityContext:
  runAsUser: {{ $s.proxyUid }}
  runAsGroup: {{ $s.proxyUid }}
  runAsNonRoot: true
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- if $s.probes }}
startupProbe:
  httpGet: {path: /readyz, port: {{ $s.adminPort }}}
  periodSeconds: 1
  failureThreshold: 60
readinessProbe:
  httpGet: {path: /readyz, port: {{ $s.adminPort }}}
  periodSeconds: 5
livenessProbe:
  httpGet: {path: /healthz, port: {{ $s.adminPort }}}
  periodSeconds: 10
  failureThreshold: 3
{{- end }}
{{- if and (not $s.native) (gt (int $s.preStopSleepSeconds) 0) }}
lifecycle:
  preStop:
    exec:
      command: ["sleep", {{ $s.preStopSleepSeconds | toString | quote }}]
{{- end }}
{{- with $s.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Static injection: the pod's initContainers entries (the iptables step, and the native sidecar)
and containers entries (the regular sidecar), as YAML list items. Same dict as above, e.g.
  initContainers:
    {{- include "tracecar.initContainers" (dict "values" .Values.tracecar) | nindent 4 }}
*/}}
{{- define "tracecar.initContainers" -}}
- {{- include "tracecar.initContainer" . | nindent 2 }}
{{- if .values.sidecar.native }}
- {{- include "tracecar.sidecarContainer" . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "tracecar.containers" -}}
{{- if not .values.sidecar.native }}
- {{- include "tracecar.sidecarContainer" . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The injector's template file: both containers with the chart's values, as JSON.
*/}}
{{- define "tracecar.injectionTemplate" -}}
{{- $ctx := dict "values" .Values -}}
{{- dict "initContainer" (include "tracecar.initContainer" $ctx | fromYaml) "sidecar" (include "tracecar.sidecarContainer" $ctx | fromYaml) | toJson -}}
{{- end -}}
