package deploy

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"os"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const chart = "helm/consentry"

// helm runs the Helm CLI this module pins (go.mod's tool line).
func helm(t *testing.T, allowFail bool, args ...string) (string, error) {
	t.Helper()
	return command(t, ".", nil, allowFail, "go", append([]string{"tool", "helm"}, args...)...)
}

// setArgs turns values into helm --set flags, sorted.
func setArgs(values map[string]string) []string {
	var args []string
	for _, k := range slices.Sorted(maps.Keys(values)) {
		args = append(args, "--set", k+"="+strings.ReplaceAll(values[k], ",", `\,`))
	}
	return args
}

// manifests is a rendered chart, decoded strictly: a field the
// Kubernetes API does not know fails the decoding.
type manifests struct {
	statefulSet *appsv1.StatefulSet
	services    []corev1.Service
	secrets     []corev1.Secret
	configMaps  []corev1.ConfigMap
	other       map[string]int // kinds without their own field, counted
	rules       any            // the PrometheusRule's spec, if any
	pdb         *policyv1.PodDisruptionBudget
	policy      *networkingv1.NetworkPolicy
}

// render renders the chart with values (helm template) and decodes it.
func render(t *testing.T, values map[string]string) *manifests {
	t.Helper()
	out, _ := helm(t, false, append([]string{"template", "consentry", chart, "--namespace", "telemetry"}, setArgs(values)...)...)
	m := &manifests{other: map[string]int{}}
	for doc := range strings.SplitSeq(out, "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%v in:\n%s", err, doc)
		}
		strict := func(v any) {
			if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
				t.Fatalf("%s: %v in:\n%s", head.Kind, err, doc)
			}
		}
		switch head.Kind {
		case "":
		case "StatefulSet":
			m.statefulSet = &appsv1.StatefulSet{}
			strict(m.statefulSet)
		case "Service":
			var s corev1.Service
			strict(&s)
			m.services = append(m.services, s)
		case "Secret":
			var s corev1.Secret
			strict(&s)
			m.secrets = append(m.secrets, s)
		case "ConfigMap":
			var c corev1.ConfigMap
			strict(&c)
			m.configMaps = append(m.configMaps, c)
		case "PodDisruptionBudget":
			m.pdb = &policyv1.PodDisruptionBudget{}
			strict(m.pdb)
		case "NetworkPolicy":
			m.policy = &networkingv1.NetworkPolicy{}
			strict(m.policy)
		case "PrometheusRule":
			var r struct{ Spec any }
			if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			m.rules = r.Spec
			m.other[head.Kind]++
		case "ServiceAccount":
			var sa corev1.ServiceAccount
			strict(&sa)
			m.other[head.Kind]++
		default:
			m.other[head.Kind]++
		}
	}
	if m.statefulSet == nil {
		t.Fatalf("no StatefulSet in:\n%s", out)
	}
	return m
}

// secret returns the rendered Secret name, or nil.
func (m *manifests) secret(name string) *corev1.Secret {
	for i := range m.secrets {
		if m.secrets[i].Name == name {
			return &m.secrets[i]
		}
	}
	return nil
}

// container returns the collector's container.
func (m *manifests) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := m.statefulSet.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%d containers: secrets are mounted into the collector's only", len(cs))
	}
	return cs[0]
}

// valueSets are the configurations the chart is rendered with.
var valueSets = map[string]map[string]string{
	"least": {"clickhouse.addr": "clickhouse:9000"},
	"everything on": {
		"clickhouse.addr":                              "ch-0:9000,ch-1:9000",
		"clickhouse.cluster":                           "events",
		"clickhouse.passwordSecret.name":               "clickhouse-consentry",
		"tls.secretName":                               "consentry-tls",
		"tls.clientCASecretName":                       "consentry-client-ca",
		"alerts.rulesSecret":                           "consentry-alerts",
		"geoip.volume.persistentVolumeClaim.claimName": "geoip",
		"serviceMonitor.enabled":                       "true",
		"prometheusRule.enabled":                       "true",
		"grafanaDashboard.enabled":                     "true",
		"networkPolicy.adminFrom[0].namespaceSelector.matchLabels.name": "monitoring",
		"config.CONSENTRY_GENERALIZE_K":                                 "20",
		"spool.maxBytes":                                                "8000000000",
		"image.digest":                                                  "sha256:" + strings.Repeat("ab", 32),
		"extraArgs[0]":                                                  "--rate-limit=5000",
		"service.type":                                                  "LoadBalancer",
		"service.externalTrafficPolicy":                                 "Local",
		"shutdownTimeout":                                               "2m",
		"shutdownDelay":                                                 "15s",
		"terminationGracePeriodSeconds":                                 "150",
	},
	"existing secrets, one replica, no policies": {
		"clickhouse.addr":             "clickhouse:9000",
		"consent.existingSecret":      "consent-keys",
		"dashboard.credentialsSecret": "staff",
		"replicaCount":                "1",
		"networkPolicy.enabled":       "false",
		"podDisruptionBudget.enabled": "false",
		"serviceAccount.create":       "false",
	},
}

func TestChartLints(t *testing.T) {
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			helm(t, false, append([]string{"lint", "--strict", chart}, setArgs(values)...)...)
		})
	}
}

// TestChartPromises checks, for every value set, what the chart promises
// beyond valid objects: the collector's pod runs unprivileged, holds its
// secrets readable by itself only, is given time for its graceful
// shutdown, is probed where consentryd answers, and its Services,
// disruption budget and network policy select it and name its ports.
func TestChartPromises(t *testing.T) {
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			m := render(t, values)
			pod := m.statefulSet.Spec.Template.Spec
			c := m.container(t)

			// Unprivileged.
			sc, psc := c.SecurityContext, pod.SecurityContext
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("the service account token is mounted")
			}
			if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
				t.Error("Service links set variables in the collector's prefix")
			}
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.FSGroup == nil ||
				psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod security context %+v: want a non-root user, an fsGroup and the RuntimeDefault seccomp profile", psc)
			}
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("container security context %+v: want a read-only root, no privilege escalation, no capabilities", sc)
			}

			// Secrets readable by the collector only, and mounted read-only.
			secretVolumes := map[string]bool{}
			for _, v := range pod.Volumes {
				if v.Secret == nil {
					continue
				}
				secretVolumes[v.Name] = true
				if v.Secret.DefaultMode == nil {
					t.Errorf("secret volume %s: Kubernetes' default mode 0644 lets every user read it", v.Name)
				} else if mode := *v.Secret.DefaultMode; mode&0o007 != 0 || mode&0o222 != 0 {
					t.Errorf("secret volume %s: mode %04o, want none for others and no writes", v.Name, mode)
				}
				for _, it := range v.Secret.Items {
					if it.Mode != nil {
						t.Errorf("secret volume %s: item %s has its own mode", v.Name, it.Key)
					}
				}
			}
			secretFiles := map[string]bool{} // the files of the Secret volumes, by path
			for _, v := range pod.Volumes {
				if v.Secret == nil {
					continue
				}
				if len(v.Secret.Items) == 0 {
					t.Errorf("secret volume %s: no items: a key missing from its Secret would not stop the pod", v.Name)
				}
				for _, vm := range c.VolumeMounts {
					for _, it := range v.Secret.Items {
						if vm.Name == v.Name {
							secretFiles[path.Join(vm.MountPath, it.Path)] = true
						}
					}
				}
			}
			mounts := map[string]string{} // mount path by volume
			for _, vm := range c.VolumeMounts {
				mounts[vm.Name] = vm.MountPath
				if secretVolumes[vm.Name] && !vm.ReadOnly {
					t.Errorf("secret volume %s mounted writable", vm.Name)
				}
			}
			for _, want := range []string{"data", "consent", "dashboard"} {
				if mounts[want] == "" {
					t.Errorf("no volume %s mounted", want)
				}
			}

			// Every file the environment names is on a mounted volume,
			// and every setting is one consentryd reads.
			env := map[string]string{}
			known := knownVariables(t)
			for _, e := range c.Env {
				env[e.Name] = e.Value
				if e.ValueFrom != nil || !slices.Contains(known, e.Name) {
					t.Errorf("variable %s: not a plain CONSENTRY_ setting consentryd reads", e.Name)
				}
				if strings.HasPrefix(e.Value, "/") {
					volume := ""
					for v, mp := range mounts {
						if strings.HasPrefix(e.Value, mp+"/") || e.Value == mp {
							volume = v
						}
					}
					switch {
					case volume == "":
						t.Errorf("%s=%s is on no mounted volume", e.Name, e.Value)
					case secretVolumes[volume] && !secretFiles[e.Value]:
						// consentryd would make a secret of its own there,
						// one per replica, or fail on the read-only mount.
						t.Errorf("%s=%s is no file of the Secret volume %s", e.Name, e.Value, volume)
					}
				}
			}
			if values["tls.secretName"] != "" && (env["CONSENTRY_TLS_CERT"] == "" || env["CONSENTRY_TLS_KEY"] == "") {
				t.Error("TLS configured but not passed on")
			}

			// Time for the graceful shutdown: the delay while load
			// balancers take the pod out (a few seconds), then the
			// shutdown's bound.
			shutdown, err := time.ParseDuration(env["CONSENTRY_SHUTDOWN_TIMEOUT"])
			if err != nil {
				t.Fatal(err)
			}
			delay, err := time.ParseDuration(env["CONSENTRY_SHUTDOWN_DELAY"])
			if err != nil {
				t.Fatal(err)
			}
			if delay < 3*time.Second && values["shutdownDelay"] == "" {
				t.Errorf("shutdown delay %v: a stopping pod refuses requests that Services still send it", delay)
			}
			if grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; grace <= delay+shutdown+10*time.Second {
				t.Errorf("grace period %v for a delay of %v and a shutdown of up to %v", grace, delay, shutdown)
			}

			// Probes and ports.
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			for addr, port := range map[string]string{"CONSENTRY_GRPC_ADDR": "grpc", "CONSENTRY_HTTP_ADDR": "http", "CONSENTRY_ADMIN_ADDR": "admin"} {
				if env[addr] != ":"+strconv.Itoa(int(ports[port])) {
					t.Errorf("%s=%s, but the container's port %s is %d", addr, env[addr], port, ports[port])
				}
			}
			wantScheme := corev1.URISchemeHTTP
			if values["tls.secretName"] != "" {
				wantScheme = corev1.URISchemeHTTPS
			}
			for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.StrVal != "admin" || p.HTTPGet.Scheme != wantScheme {
					t.Errorf("%s probe %+v: want an HTTP GET of the admin port, %s", name, p, wantScheme)
					continue
				}
				want := "/livez"
				if name == "readiness" {
					want = "/readyz"
				}
				if p.HTTPGet.Path != want {
					t.Errorf("%s probe of %s, want %s", name, p.HTTPGet.Path, want)
				}
			}

			// Selectors and target ports.
			labels := m.statefulSet.Spec.Template.Labels
			selects := func(sel map[string]string) bool {
				for k, v := range sel {
					if labels[k] != v {
						return false
					}
				}
				return len(sel) > 0
			}
			if len(m.services) != 3 {
				t.Errorf("%d Services, want ingest, headless and admin", len(m.services))
			}
			for _, s := range m.services {
				if !selects(s.Spec.Selector) {
					t.Errorf("Service %s selects %v, not the pods (%v)", s.Name, s.Spec.Selector, labels)
				}
				for _, p := range s.Spec.Ports {
					if ports[p.TargetPort.StrVal] == 0 {
						t.Errorf("Service %s: target port %v is none of the container's", s.Name, p.TargetPort)
					}
					if p.TargetPort.StrVal == "admin" && s.Spec.SessionAffinity != corev1.ServiceAffinityClientIP {
						t.Errorf("Service %s: dashboard sessions are signed per replica, but requests are spread", s.Name)
					}
				}
			}
			if p := values["service.externalTrafficPolicy"]; p != "" && m.services[0].Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicy(p) {
				t.Errorf("externalTrafficPolicy %q, want %q", m.services[0].Spec.ExternalTrafficPolicy, p)
			}
			if m.statefulSet.Spec.ServiceName != m.statefulSet.Name+"-headless" {
				t.Errorf("serviceName %s", m.statefulSet.Spec.ServiceName)
			}
			if values["podDisruptionBudget.enabled"] != "false" && (m.pdb == nil || !selects(m.pdb.Spec.Selector.MatchLabels)) {
				t.Error("no disruption budget for the pods")
			}
			if values["networkPolicy.enabled"] != "false" {
				if m.policy == nil || !selects(m.policy.Spec.PodSelector.MatchLabels) {
					t.Fatal("no network policy for the pods")
				}
				for _, rule := range m.policy.Spec.Ingress {
					for _, p := range rule.Ports {
						if p.Port.StrVal == "admin" && len(rule.From) == 0 {
							t.Error("the admin port is open to every peer")
						}
					}
				}
			}

			// The spool's volume is kept when the set shrinks.
			if r := m.statefulSet.Spec.PersistentVolumeClaimRetentionPolicy; r == nil || r.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
				t.Errorf("PVC retention %+v: a replica's unshipped spool would be deleted when the set shrinks", r)
			}
			if values["serviceMonitor.enabled"] == "true" && m.other["ServiceMonitor"] != 1 {
				t.Error("no ServiceMonitor")
			}
			if values["prometheusRule.enabled"] == "true" {
				var want any
				if err := yaml.Unmarshal(must(os.ReadFile(rulesFile)), &want); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(m.rules, want) {
					t.Errorf("the PrometheusRule's spec is not %s:\n%v", rulesFile, m.rules)
				}
			}
		})
	}
}

// TestChartMakesKeysOnce checks the Secrets the chart makes when none is
// given: a consent signing key consentryd can read (PKCS #8 Ed25519), a
// consent secret of at least 32 bytes, dashboard credentials, the keys
// kept on uninstall; and that it makes none when they are given.
func TestChartMakesKeysOnce(t *testing.T) {
	m := render(t, valueSets["least"])
	consent := m.secret("consentry-consent")
	if consent == nil {
		t.Fatal("no consent Secret")
	}
	if consent.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Error("the consent keys go with the release: tokens issued would no longer verify after a reinstall")
	}
	block, _ := pem.Decode(consent.Data["consent-signing-key.pem"])
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("signing key %q", consent.Data["consent-signing-key.pem"])
	}
	if key, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		t.Errorf("signing key: %v", err)
	} else if _, ok := key.(ed25519.PrivateKey); !ok {
		t.Errorf("signing key is a %T, want Ed25519", key)
	}
	if n := len(consent.Data["consent-secret"]); n < 32 {
		t.Errorf("consent secret of %d bytes", n)
	}
	if d := m.secret("consentry-dashboard"); d == nil || !strings.HasPrefix(string(d.Data["dashboard-credentials"]), "admin:") {
		t.Error("no dashboard credentials")
	}
	// Given Secrets: none made, theirs used.
	m = render(t, valueSets["existing secrets, one replica, no policies"])
	if len(m.secrets) != 0 {
		t.Errorf("%d Secrets made though all were given", len(m.secrets))
	}
	for _, v := range m.statefulSet.Spec.Template.Spec.Volumes {
		if v.Secret != nil && !slices.Contains([]string{"consent-keys", "staff"}, v.Secret.SecretName) {
			t.Errorf("volume %s of Secret %s", v.Name, v.Secret.SecretName)
		}
	}
}

// TestChartGrafanaDashboard checks the dashboard's ConfigMap: none by
// default; enabled, the committed dashboard, with the label Grafana's
// sidecar loads it by and the folder annotation.
func TestChartGrafanaDashboard(t *testing.T) {
	if m := render(t, map[string]string{"clickhouse.addr": "ch:9000"}); len(m.configMaps) != 0 {
		t.Errorf("%d ConfigMaps by default, want none", len(m.configMaps))
	}
	m := render(t, map[string]string{"clickhouse.addr": "ch:9000", "grafanaDashboard.enabled": "true", "grafanaDashboard.folder": "Telemetry"})
	if len(m.configMaps) != 1 {
		t.Fatalf("%d ConfigMaps, want the dashboard's", len(m.configMaps))
	}
	cm := m.configMaps[0]
	want, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["consentry-collectors.json"]; got != strings.TrimRight(string(want), "\n") {
		t.Errorf("the ConfigMap's dashboard differs from %s (%d bytes, want %d)", dashboardFile, len(got), len(want))
	}
	if cm.Labels["grafana_dashboard"] != "1" || cm.Annotations["grafana_folder"] != "Telemetry" {
		t.Errorf("labels %v, annotations %v: want grafana_dashboard \"1\" and the folder", cm.Labels, cm.Annotations)
	}
}

// TestChartRefusesBadValues checks that values which would deploy a
// collector that cannot start, or one that breaks a promise, stop the
// rendering with the reason.
func TestChartRefusesBadValues(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		want   string
	}{
		{"no ClickHouse", map[string]string{}, "clickhouse.addr is required"},
		{"a grace period shorter than the shutdown", map[string]string{"clickhouse.addr": "ch:9000", "terminationGracePeriodSeconds": "30"}, "must exceed shutdownDelay (5s) plus shutdownTimeout (30s)"},
		{"a grace period shorter than the delay and the shutdown", map[string]string{"clickhouse.addr": "ch:9000", "shutdownDelay": "30s"}, "must exceed shutdownDelay (30s)"},
		{"a shutdown timeout in hours", map[string]string{"clickhouse.addr": "ch:9000", "shutdownTimeout": "1h"}, "shutdownTimeout"},
		{"a shutdown delay in hours", map[string]string{"clickhouse.addr": "ch:9000", "shutdownDelay": "1h"}, "shutdownDelay"},
		{"a misspelt value", map[string]string{"clickhouse.addr": "ch:9000", "clickhouse.adress": "x"}, "adress"},
		{"a setting that is no variable", map[string]string{"clickhouse.addr": "ch:9000", "config.generalize_k": "5"}, "generalize_k"},
		{"a tag for a digest", map[string]string{"clickhouse.addr": "ch:9000", "image.digest": "v1.2"}, "digest"},
		{"a sidecar label that is no label", map[string]string{"clickhouse.addr": "ch:9000", "grafanaDashboard.sidecarLabel": "grafana dashboard"}, "sidecarLabel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := helm(t, true, append([]string{"template", "consentry", chart}, setArgs(tt.values)...)...)
			if err == nil || !strings.Contains(out, tt.want) {
				t.Errorf("err = %v, output lacks %q:\n%s", err, tt.want, out)
			}
		})
	}
}

// podEnv returns the collector container's environment as "K=V" entries,
// on top of the image's own (deploy/container/Containerfile).
func podEnv(c corev1.Container, image []string) []string {
	env := append([]string(nil), image...)
	for _, e := range c.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	return env
}
