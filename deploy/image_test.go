package deploy

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// imageConfig is the part of an OCI image's configuration the tests read.
type imageConfig struct {
	User         string
	Env          []string
	Entrypoint   []string
	Cmd          []string
	ExposedPorts map[string]struct{}
	WorkingDir   string
	Volumes      map[string]struct{}
	Labels       map[string]string
}

// buildImage builds the image with scripts/image.sh as name and returns
// its ID; the image is removed when t ends.
func buildImage(t *testing.T, name string) string {
	t.Helper()
	out, _ := command(t, "..", append(os.Environ(), "IMAGE="+name), false, "./scripts/image.sh")
	t.Cleanup(func() { _, _ = command(t, "", nil, true, "buildah", "rmi", "--force", name) })
	fields := strings.Fields(out)
	if len(fields) < 2 || fields[len(fields)-2] != name {
		t.Fatalf("scripts/image.sh printed %q", out)
	}
	return fields[len(fields)-1]
}

// TestImage builds the image twice and checks it: the same sources give
// the same image; it runs consentryd as an unprivileged user, with
// nothing else in it but the CLI and the CA bundle; and consentryd, run in
// the image's file system as the chart runs it (its environment, its
// secrets' files with the modes Kubernetes gives them), accepts the
// configuration of every value set of the chart.
func TestImage(t *testing.T) {
	buildah := requireCommand(t, "buildah", "buildah")
	name := fmt.Sprintf("localhost/consentry/consentryd:test-%d", os.Getpid())
	id := buildImage(t, name)
	if again := buildImage(t, name); again != id {
		t.Errorf("two builds of the same sources: images %s and %s", id, again)
	}

	out, _ := command(t, "", nil, false, buildah, "inspect", "--type", "image", name)
	var inspect struct{ OCIv1 struct{ Config imageConfig } }
	if err := json.Unmarshal([]byte(out), &inspect); err != nil {
		t.Fatal(err)
	}
	cfg := inspect.OCIv1.Config
	if cfg.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root, the chart's runAsUser)", cfg.User)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/usr/local/bin/consentryd"}) || len(cfg.Cmd) != 0 {
		t.Errorf("entrypoint %q, cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
	if got := slices.Sorted(maps.Keys(cfg.ExposedPorts)); !slices.Equal(got, []string{"4790/tcp", "4791/tcp", "4792/tcp"}) {
		t.Errorf("exposed ports %q", got)
	}
	if _, ok := cfg.Volumes["/var/lib/consentry"]; !ok || cfg.WorkingDir != "/var/lib/consentry" {
		t.Errorf("volumes %v, working dir %q", cfg.Volumes, cfg.WorkingDir)
	}
	if cfg.Labels["org.opencontainers.image.revision"] == "" || cfg.Labels["org.opencontainers.image.source"] == "" {
		t.Errorf("labels %v", cfg.Labels)
	}

	ctr := strings.TrimSpace(must(command(t, "", nil, false, buildah, "from", "--quiet", "--pull=never", name)))
	t.Cleanup(func() { _, _ = command(t, "", nil, true, buildah, "rm", ctr) })
	root := strings.TrimSpace(must(command(t, "", nil, false, buildah, "mount", ctr)))
	t.Cleanup(func() { _, _ = command(t, "", nil, true, buildah, "umount", ctr) })

	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"etc/ssl/certs/ca-certificates.crt", "usr/local/bin/consentry", "usr/local/bin/consentryd"}; !slices.Equal(files, want) {
		t.Errorf("files %q, want %q and no shell", files, want)
	}
	if fi, err := os.Stat(filepath.Join(root, "var/lib/consentry")); err != nil || !fi.IsDir() || owner(fi) != 65532 {
		t.Errorf("/var/lib/consentry: %v, owner %d", err, owner(fi))
	}

	t.Run("serves as the chart runs it", func(t *testing.T) { serveImage(t, root, cfg.Env) })
	for vs, values := range valueSets {
		t.Run(vs, func(t *testing.T) {
			m := render(t, values)
			c := m.container(t)
			env := podEnv(c, cfg.Env)
			mounted := mountVolumes(t, root, m, givenSecrets(t))
			defer func() {
				for _, dir := range mounted {
					_ = os.RemoveAll(dir)
				}
			}()
			for _, e := range c.Env {
				if strings.HasPrefix(e.Value, "/") {
					if _, err := os.Stat(filepath.Join(root, e.Value)); err != nil {
						t.Errorf("%s: %v", e.Name, err)
					}
				}
			}
			run := func(env []string) (string, bool) {
				args := append([]string{"--userspec=65532:65532", root, "/usr/local/bin/consentryd", "--check-config"}, c.Args...)
				out, err := command(t, "", env, true, "chroot", args...)
				return out, err == nil
			}
			if out, ok := run(env); !ok || !strings.Contains(out, "configuration OK") {
				t.Fatalf("consentryd in the image, configured by the chart:\n%s", out)
			}
			// The same check fails on what the chart must not let
			// through: a misspelt setting, a secret every user reads.
			if out, ok := run(append(env, "CONSENTRY_GENERALISE_K=5")); ok {
				t.Errorf("a misspelt setting passed:\n%s", out)
			}
			secret := filepath.Join(root, "etc/consentry/consent/consent-secret")
			if err := os.Chmod(secret, 0o444); err != nil {
				t.Fatal(err)
			}
			if out, ok := run(env); ok || !strings.Contains(out, "readable by every user") {
				t.Errorf("a consent secret every user may read passed:\n%s", out)
			}
		})
	}
}

// must returns v, dropping the error a check after it would show.
func must[T any](v T, _ error) T { return v }

// serveImage runs consentryd from the image's file system root as the
// chart runs it, against the ClickHouse of a consentryd started here on
// its local default: the chart's environment (ports on loopback), its
// Secrets' files (the other collector's consent keys, so that both
// verify the same tokens) with the kubelet's modes, a read-only root, user
// 65532, its state on a volume of its own. It sends the demo's batches
// through it, checks they are accepted and stored, and stops it with
// SIGTERM within the chart's grace period.
func serveImage(t *testing.T, root string, image []string) {
	if testing.Short() {
		t.Skip("starts ClickHouse")
	}
	requireCommand(t, "unshare", "util-linux")
	hostDir := t.TempDir()
	host := managedCollector(t, hostDir)
	host.waitFor(t, "/readyz")
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(hostDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	chAddr := strings.TrimSpace(string(read("clickhouse.addr")))

	m := render(t, map[string]string{
		"clickhouse.addr":                chAddr,
		"clickhouse.user":                "collector",
		"clickhouse.passwordSecret.name": "clickhouse-collector",
		"consent.existingSecret":         "consent-keys",
	})
	pod := m.container(t)
	mounted := mountVolumes(t, root, m, map[string]map[string][]byte{
		"clickhouse-collector": {"password": read("clickhouse-collector-password")},
		"consent-keys": {
			"consent-secret":          read("consent-secret"),
			"consent-signing-key.pem": read("consent-signing-key.pem"),
		},
	})
	t.Cleanup(func() {
		for _, dir := range mounted {
			_ = os.RemoveAll(dir)
		}
	})
	state := t.TempDir()
	if err := os.Chown(state, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o555); err != nil {
		t.Fatal(err)
	}
	env := append(podEnv(pod, image),
		"CONSENTRY_GRPC_ADDR=127.0.0.1:0", "CONSENTRY_HTTP_ADDR=127.0.0.1:0", "CONSENTRY_ADMIN_ADDR=127.0.0.1:0",
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "IMAGE_ROOT="+root, "STATE="+state)
	// In a mount namespace of its own: the root read-only, the state
	// volume and /proc over it, then consentryd chrooted as user 65532
	// (exec keeps one process, which SIGTERM reaches).
	script := `set -e
mount --bind "$IMAGE_ROOT" "$IMAGE_ROOT"
mount -o remount,bind,ro "$IMAGE_ROOT"
mount --bind "$STATE" "$IMAGE_ROOT/var/lib/consentry"
mount -t proc proc "$IMAGE_ROOT/proc"
exec chroot --userspec=65532:65532 "$IMAGE_ROOT" /usr/local/bin/consentryd "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh"}, pod.Args...)...)
	cmd.Env = env
	c := startCollector(t, cmd)
	c.waitFor(t, "/readyz")

	out, err := command(t, "", nil, true, consentryCLI, "demo", "--addr", c.grpc, "--app-id", "com.example.image",
		"--clickhouse-addr", chAddr, "--clickhouse-user", "collector",
		"--clickhouse-password-file", filepath.Join(hostDir, "clickhouse-collector-password"),
		"--consent-signing-key-file", filepath.Join(hostDir, "consent-signing-key.pem"))
	if err != nil || !strings.Contains(out, "accepted 200, dropped 0") || !regexp.MustCompile(`(?m)^  sessions +[1-9]`).MatchString(out) {
		t.Fatalf("the demo through consentryd in the image: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(root, "usr/local/bin/consentryd")); err != nil || len(b) == 0 {
		t.Fatalf("the image's root: %v", err)
	}
	// Nothing was written outside the state volume: the root stayed
	// read-only, and the spool is on the volume.
	if _, err := os.Stat(filepath.Join(state, "spool")); err != nil {
		t.Errorf("no spool on the state volume: %v", err)
	}
	c.stop(t, time.Duration(*m.statefulSet.Spec.Template.Spec.TerminationGracePeriodSeconds)*time.Second)
}

// givenSecrets are the Secrets a cluster holds before the chart is
// installed, by name and key, for the value sets that name them.
func givenSecrets(t *testing.T) map[string]map[string][]byte {
	t.Helper()
	cert, key := testCert(t)
	_, signing, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signing)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]map[string][]byte{
		"clickhouse-consentry": {"password": []byte("a password")},
		"consentry-tls":        {"tls.crt": cert, "tls.key": key},
		"consentry-client-ca":  {"ca.crt": cert},
		"consentry-alerts":     {"alert-rules.json": []byte(alertRules)},
		"consent-keys": {
			"consent-secret":          []byte(strings.Repeat("k", 48)),
			"consent-signing-key.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		},
		"staff": {"dashboard-credentials": []byte("admin:a long enough password\n")},
	}
}

// mountVolumes does under root what the kubelet does for the collector's
// pod: each Secret volume's files (from the rendered Secrets, else from
// given) with the volume's mode, owned by root and the pod's fsGroup;
// other volumes as empty directories, but the geoip volume's database
// file. It returns the directories it made.
func mountVolumes(t *testing.T, root string, m *manifests, given map[string]map[string][]byte) []string {
	t.Helper()
	pod := m.statefulSet.Spec.Template.Spec
	c := m.container(t)
	group := int(*pod.SecurityContext.FSGroup)
	var made []string
	for _, v := range pod.Volumes {
		var mountPath string
		for _, vm := range c.VolumeMounts {
			if vm.Name == v.Name {
				mountPath = vm.MountPath
			}
		}
		if mountPath == "" {
			t.Fatalf("volume %s is not mounted", v.Name)
		}
		dir := filepath.Join(root, mountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, dir)
		switch {
		case v.Secret != nil:
			data := given[v.Secret.SecretName]
			if s := m.secret(v.Secret.SecretName); s != nil {
				data = s.Data
			}
			if data == nil {
				t.Fatalf("volume %s: no Secret %s", v.Name, v.Secret.SecretName)
			}
			items := v.Secret.Items
			if len(items) == 0 {
				for k := range data {
					items = append(items, corev1.KeyToPath{Key: k, Path: k})
				}
			}
			for _, it := range items {
				b, ok := data[it.Key]
				if !ok {
					t.Fatalf("volume %s: Secret %s has no key %s", v.Name, v.Secret.SecretName, it.Key)
				}
				p := filepath.Join(dir, it.Path)
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(p, 0, group); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, fs.FileMode(*v.Secret.DefaultMode)); err != nil {
					t.Fatal(err)
				}
			}
		case v.Name == "geoip":
			var file string
			for _, e := range c.Env {
				if e.Name == "CONSENTRY_GEOIP_DB" {
					file = filepath.Base(e.Value)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, file), []byte("an MMDB file"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return made
}

// owner returns the user ID owning the file fi describes, or -1.
func owner(fi fs.FileInfo) int {
	if fi == nil {
		return -1
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1
	}
	return int(st.Uid)
}
