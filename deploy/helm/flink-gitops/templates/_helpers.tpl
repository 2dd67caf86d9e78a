{{/* The chart's name. */}}
{{- define "flink-gitops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of every object of the release (and of the Lease). */}}
{{- define "flink-gitops.fullname" -}}
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

{{- define "flink-gitops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flink-gitops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flink-gitops.labels" -}}
{{ include "flink-gitops.selectorLabels" . }}
app.kubernetes.io/part-of: flink-gitops
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "flink-gitops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flink-gitops.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: set the name of the existing ServiceAccount (serviceAccount.create is false)" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "flink-gitops.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The namespaces the daemon deploys into, as a JSON list: rbac.namespaces, or
the release namespace alone in namespaced mode (where any other namespace
is refused).
*/}}
{{- define "flink-gitops.targetNamespaces" -}}
{{- if .Values.rbac.namespaced -}}
{{- range .Values.rbac.namespaces -}}
{{- if ne . $.Release.Namespace -}}
{{- fail (printf "rbac.namespaces lists %q, but rbac.namespaced installs into the release namespace %q only: set rbac.namespaces to [] (or [%s]), or rbac.namespaced to false" . $.Release.Namespace $.Release.Namespace) -}}
{{- end -}}
{{- end -}}
{{- list .Release.Namespace | toJson -}}
{{- else -}}
{{- if not .Values.rbac.namespaces -}}
{{- fail "rbac.namespaces is empty: list the namespaces the daemon deploys Flink into, or set rbac.namespaced to true to use the release namespace" -}}
{{- end -}}
{{- .Values.rbac.namespaces | uniq | toJson -}}
{{- end -}}
{{- end -}}

{{/* The name of the Secret of one credential (git, webhook, forge), or "" when there is none. */}}
{{- define "flink-gitops.secretName" -}}
{{- $s := index .root.Values.secrets .which -}}
{{- $value := ternary (get $s "secret") (get $s "token") (eq .which "webhook") -}}
{{- if and $s.existingSecret $value -}}
{{- fail (printf "secrets.%s: set existingSecret or the value, not both" .which) -}}
{{- end -}}
{{- if $s.existingSecret -}}
{{- $s.existingSecret -}}
{{- else if $value -}}
{{- printf "%s-%s" (include "flink-gitops.fullname" .root) .which -}}
{{- end -}}
{{- end -}}

{{/* Where each credential is mounted. */}}
{{- define "flink-gitops.secretDir" -}}
/var/run/secrets/flink-gitops/{{ . }}
{{- end -}}

{{/*
The daemon's config: .Values.config plus the keys the chart owns, so that
they agree with the RBAC, the Lease Role, the ports and the mounts.
*/}}
{{- define "flink-gitops.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $namespaces := include "flink-gitops.targetNamespaces" . | fromJsonArray -}}
{{- $kube := default dict $cfg.kubernetes -}}
{{- $_ := set $kube "allowedNamespaces" $namespaces -}}
{{- if not $kube.defaultNamespace -}}
{{- $_ := set $kube "defaultNamespace" (first $namespaces) -}}
{{- else if not (has $kube.defaultNamespace $namespaces) -}}
{{- fail (printf "config.kubernetes.defaultNamespace %q is not one of the namespaces the daemon may deploy into (%s): add it to rbac.namespaces or change it" $kube.defaultNamespace (join ", " $namespaces)) -}}
{{- end -}}
{{- $_ := set $cfg "kubernetes" $kube -}}
{{- $le := default dict $cfg.leaderElection -}}
{{- $_ := set $le "enabled" true -}}
{{- $_ := set $le "leaseName" (include "flink-gitops.fullname" .) -}}
{{- $_ := set $cfg "leaderElection" $le -}}
{{- $server := default dict $cfg.server -}}
{{- $_ := set $server "listen" ":8080" -}}
{{- $_ := set $cfg "server" $server -}}
{{- $git := default dict $cfg.git -}}
{{- if include "flink-gitops.secretName" (dict "root" . "which" "git") -}}
{{- $auth := default dict $git.auth -}}
{{- $_ := set $auth "tokenFile" (printf "%s/token" (include "flink-gitops.secretDir" "git")) -}}
{{- $_ := set $git "auth" $auth -}}
{{- end -}}
{{- $_ := set $cfg "git" $git -}}
{{- include "flink-gitops.fileConfig" (dict "root" . "cfg" $cfg) -}}
{{- if .Values.webhook.enabled -}}
{{- if not (include "flink-gitops.secretName" (dict "root" . "which" "webhook")) -}}
{{- fail "webhook.enabled needs secrets.webhook (existingSecret or secret): every delivery is authenticated; or set webhook.enabled to false to only poll" -}}
{{- end -}}
{{- $wh := default dict $cfg.webhook -}}
{{- $_ := set $wh "listen" ":9292" -}}
{{- $_ := set $wh "secrets" (dict (printf "%sFile" .Values.secrets.webhook.provider) (printf "%s/secret" (include "flink-gitops.secretDir" "webhook"))) -}}
{{- $_ := set $cfg "webhook" $wh -}}
{{- else if include "flink-gitops.secretName" (dict "root" . "which" "webhook") -}}
{{- fail "secrets.webhook is set but webhook.enabled is false: the secret would not be used; remove it or enable the webhook" -}}
{{- end -}}
{{- $pr := default dict $cfg.pullRequests -}}
{{- if $pr.enabled -}}
{{- if not (include "flink-gitops.secretName" (dict "root" . "which" "forge")) -}}
{{- fail "config.pullRequests.enabled needs secrets.forge (existingSecret or token): the forge API token the comments are written with" -}}
{{- end -}}
{{- $_ := set $pr "tokenFile" (printf "%s/token" (include "flink-gitops.secretDir" "forge")) -}}
{{- $_ := set $cfg "pullRequests" $pr -}}
{{- else if include "flink-gitops.secretName" (dict "root" . "which" "forge") -}}
{{- fail "secrets.forge is set but config.pullRequests.enabled is not true: the token would not be used; remove it or enable pull-request comments" -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
Sets the config keys of the credential Secrets without a created variant
(secrets.ssh, secrets.verify, secrets.flinkTLS) to the files mounted from
them, in .cfg (the config being built), and refuses values that would
mount a file nothing reads or point the config at a file not mounted.
*/}}
{{- define "flink-gitops.fileConfig" -}}
{{- $v := .root.Values.secrets -}}
{{- $cfg := .cfg -}}
{{- $git := $cfg.git -}}
{{- $ssh := $v.ssh | default dict -}}
{{- if $ssh.existingSecret -}}
{{- if include "flink-gitops.secretName" (dict "root" .root "which" "git") -}}
{{- fail "secrets.git and secrets.ssh are both set: the daemon uses a token for https:// URLs and an SSH key for ssh:// URLs; keep the one that matches config.git.url" -}}
{{- end -}}
{{- $dir := include "flink-gitops.secretDir" "ssh" -}}
{{- $auth := default dict $git.auth -}}
{{- $_ := set $auth "sshKeyFile" (printf "%s/privateKey" $dir) -}}
{{- $_ := set $auth "knownHostsFile" (printf "%s/knownHosts" $dir) -}}
{{- if $ssh.withPassphrase -}}
{{- $_ := set $auth "sshKeyPassphraseFile" (printf "%s/passphrase" $dir) -}}
{{- end -}}
{{- $_ := set $git "auth" $auth -}}
{{- else if $ssh.withPassphrase -}}
{{- fail "secrets.ssh.withPassphrase is true but secrets.ssh.existingSecret is empty: name the Secret with privateKey, passphrase and knownHosts" -}}
{{- end -}}
{{- $verify := $v.verify | default dict -}}
{{- if $verify.existingSecret -}}
{{- if not (or $verify.openpgpKeys $verify.sshAllowedSigners) -}}
{{- fail (printf "secrets.verify.existingSecret %q: list its keys in secrets.verify.openpgpKeys (armored public keys) and/or name its allowed_signers key in secrets.verify.sshAllowedSigners" $verify.existingSecret) -}}
{{- end -}}
{{- $dir := include "flink-gitops.secretDir" "verify" -}}
{{- $gv := dict -}}
{{- if $verify.openpgpKeys -}}
{{- $files := list -}}
{{- range $verify.openpgpKeys }}{{ $files = append $files (printf "%s/%s" $dir .) }}{{ end -}}
{{- $_ := set $gv "openpgpKeyFiles" $files -}}
{{- end -}}
{{- if $verify.sshAllowedSigners -}}
{{- $_ := set $gv "sshAllowedSignersFile" (printf "%s/%s" $dir $verify.sshAllowedSigners) -}}
{{- end -}}
{{- $_ := set $git "verify" $gv -}}
{{- else if or $verify.openpgpKeys $verify.sshAllowedSigners -}}
{{- fail "secrets.verify names keys but secrets.verify.existingSecret is empty: name the Secret that holds them" -}}
{{- end -}}
{{- $tls := $v.flinkTLS | default dict -}}
{{- if $tls.existingSecret -}}
{{- if not (or $tls.ca $tls.clientCertificate) -}}
{{- fail (printf "secrets.flinkTLS.existingSecret %q: set ca (its key ca.crt) and/or clientCertificate (its keys tls.crt and tls.key) to true" $tls.existingSecret) -}}
{{- end -}}
{{- $dir := include "flink-gitops.secretDir" "flink-tls" -}}
{{- $flink := default dict $cfg.flink -}}
{{- $ft := dict -}}
{{- if $tls.ca -}}
{{- $_ := set $ft "caFile" (printf "%s/ca.crt" $dir) -}}
{{- end -}}
{{- if $tls.clientCertificate -}}
{{- $_ := set $ft "certFile" (printf "%s/tls.crt" $dir) -}}
{{- $_ := set $ft "keyFile" (printf "%s/tls.key" $dir) -}}
{{- end -}}
{{- $_ := set $flink "tls" $ft -}}
{{- $_ := set $cfg "flink" $flink -}}
{{- else if $tls.clientCertificate -}}
{{- fail "secrets.flinkTLS.clientCertificate is true but secrets.flinkTLS.existingSecret is empty: name the Secret with tls.crt and tls.key" -}}
{{- end -}}
{{- $artifacts := default dict $cfg.artifacts -}}
{{- $adir := include "flink-gitops.secretDir" "artifacts" -}}
{{- if and (not ($v.artifacts | default dict).existingSecret) (contains (printf "%s/" $adir) (toJson $artifacts)) -}}
{{- fail (printf "config.artifacts names a file under %s/ but secrets.artifacts.existingSecret is empty: name the Secret whose keys those files are" $adir) -}}
{{- end -}}
{{- with $artifacts.fileDirectory -}}
{{- $dir := clean . -}}
{{- $mounted := false -}}
{{- range $.root.Values.extraVolumeMounts -}}
{{- $m := clean .mountPath -}}
{{- if or (eq $dir $m) (hasPrefix (printf "%s/" (trimSuffix "/" $m)) $dir) }}{{ $mounted = true }}{{ end -}}
{{- end -}}
{{- if not $mounted -}}
{{- fail (printf "config.artifacts.fileDirectory %q is in no volume: mount the jar directory there with extraVolumes and extraVolumeMounts" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
What the daemon may do in a namespace it deploys Flink into: the rules of
deploy/base/clusterrole.yaml, word for word (a test compares them). Every
verb is one the daemon calls; deploy/README.md says what each is for.
*/}}
{{- define "flink-gitops.rules" -}}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments/finalizers]
  verbs: [update]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, create, patch, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [""]
  resources: [pods]
  verbs: [list, deletecollection]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
- apiGroups: [""]
  resources: [resourcequotas, limitranges]
  verbs: [list]
{{- end -}}
