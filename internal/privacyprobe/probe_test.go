package privacyprobe_test

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/anonymizer/scrub"
	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/consent/consenttest"
	"github.com/consentry/consentry/internal/privacyprobe"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

const probeApp = "com.example.probe"

// signer signs consent tokens for probeApp with every scope.
type signer struct {
	*consenttest.Signer
}

func newSigner(t testing.TB) *signer {
	t.Helper()
	return &signer{consenttest.New(t, nil)}
}

// token returns a token with every scope, valid for ttl, and its consent
// id.
func (s *signer) token(t testing.TB, ttl time.Duration) (token, consentID string) {
	t.Helper()
	consentID = consent.NewConsentID()
	token = s.Token(t, consent.Claims{ConsentID: consentID, AppID: probeApp, TextVersion: "probe-1",
		Scopes:   []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation},
		IssuedAt: time.Now().Add(-time.Minute), ExpiresAt: time.Now().Add(ttl)})
	return token, consentID
}

func newProbe(t testing.TB, s *signer, cfg privacyprobe.Config) *privacyprobe.Probe {
	t.Helper()
	token, cid := s.token(t, time.Hour)
	cfg.AppID, cfg.Token = probeApp, token
	pr, err := privacyprobe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pr.AddSecret(privacyprobe.ConsentToken, "consent_token", token, cid)
	return pr
}

func TestProbeIsSeeded(t *testing.T) {
	s := newSigner(t)
	token, _ := s.token(t, time.Hour)
	now := time.Unix(1_800_000_000, 0)
	gen := func(seed uint64) *privacyprobe.Probe {
		pr, err := privacyprobe.New(privacyprobe.Config{Seed: seed, Plants: 200, AppID: probeApp, Token: token, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	a, b, c := gen(5), gen(5), gen(6)
	if len(a.Batches) != len(b.Batches) {
		t.Fatalf("same seed, %d and %d batches", len(a.Batches), len(b.Batches))
	}
	for i := range a.Batches {
		if !proto.Equal(a.Batches[i].Request, b.Batches[i].Request) || fmt.Sprint(a.Batches[i].Headers) != fmt.Sprint(b.Batches[i].Headers) {
			t.Fatalf("same seed, batch %d differs", i)
		}
	}
	if proto.Equal(a.Batches[0].Request, c.Batches[0].Request) {
		t.Fatal("different seeds, same first batch")
	}
}

// TestProbePlantsEveryStringField: every string field of the API, at
// every depth, in every event kind, gets plants, and no two plants share
// a value.
func TestProbePlantsEveryStringField(t *testing.T) {
	pr := newProbe(t, newSigner(t), privacyprobe.Config{Seed: 1, Plants: 300})
	want, skipped := privacyprobe.StringFields()
	if len(want) < 15 {
		t.Fatalf("only %d string fields found: %v", len(want), want)
	}
	planted := map[string]int{}
	values := map[string]int{}
	kinds := map[privacyprobe.Kind]int{}
	for _, p := range pr.Plants {
		if p.Kind == privacyprobe.ConsentToken {
			continue
		}
		planted[p.Field]++
		kinds[p.Kind]++
		if prev, ok := values[p.Value]; ok {
			t.Errorf("plants #%d and #%d share the value %q", prev, p.ID, p.Value)
		}
		values[p.Value] = p.ID
	}
	for _, f := range want {
		if planted[f] == 0 {
			t.Errorf("string field %s got no plant", f)
		}
	}
	for f := range skipped {
		if planted[f] != 0 {
			t.Errorf("skipped field %s was planted", f)
		}
	}
	for _, f := range []string{"connection source address", "events[custom].attributes{}.int_value", "grpc metadata x-forwarded-for",
		"http header X-Forwarded-For", "grpc user-agent", "http header User-Agent", "device.location.latitude"} {
		if planted[f] == 0 {
			t.Errorf("%s got no plant", f)
		}
	}
	for _, k := range privacyprobe.Kinds() {
		if kinds[k] < 3 {
			t.Errorf("kind %s planted %d times", k, kinds[k])
		}
	}
	t.Logf("%d plants in %d batches; %d string fields", len(pr.Plants), len(pr.Batches), len(want))
}

// pipelineRun runs the collector's stages (limits, consent, validate,
// anonymize) on every batch of pr in process, records the outcomes, and
// scans the rows the anonymizer made.
func pipelineRun(t *testing.T, s *signer, pr *privacyprobe.Probe, scrubCfg scrub.Config) *privacyprobe.Scanner {
	t.Helper()
	lim, err := limits.New(limits.Config{})
	if err != nil {
		t.Fatal(err)
	}
	con, err := consent.NewFilter(consent.FilterConfig{Keys: s.Ring})
	if err != nil {
		t.Fatal(err)
	}
	val, err := validate.New(validate.Config{})
	if err != nil {
		t.Fatal(err)
	}
	anon, err := anonymizer.New(anonymizer.Config{Scrub: scrubCfg, Generalize: anonymizer.GeneralizeConfig{K: 1}})
	if err != nil {
		t.Fatal(err)
	}
	sc := privacyprobe.NewScanner(pr)
	for _, b := range pr.Batches {
		batch := pipeline.NewBatch(proto.Clone(b.Request).(*consentryv1.IngestRequest), time.Now(), b.Source)
		var perr error
		for _, st := range []pipeline.Stage{lim, con, val, anon} {
			if perr = st.Process(context.Background(), batch); perr != nil {
				break
			}
		}
		if perr != nil {
			t.Fatalf("batch %d refused: %v", b.Index, perr)
		}
		if batch.Peer != (netip.Addr{}) {
			t.Errorf("batch %d: the anonymizer kept the peer address", b.Index)
		}
		if err := pr.Record(b, responseOf(batch), nil); err != nil {
			t.Fatal(err)
		}
		scanValue(sc, "rows", reflect.ValueOf(batch.Rows))
	}
	return sc
}

// responseOf is the response the collector gives for b.
func responseOf(b *pipeline.Batch) *consentryv1.IngestResponse {
	resp := &consentryv1.IngestResponse{Accepted: uint32(b.Rows.Len()), Dropped: uint32(b.DroppedCount())}
	for i := range b.Request.GetEvents() {
		if r := b.DropReasonOf(i); r != consentryv1.DropReason_DROP_REASON_UNSPECIFIED {
			resp.EventDrops = append(resp.EventDrops, &consentryv1.EventDrop{Index: uint32(i), Reason: r})
		}
	}
	return resp
}

// scanValue scans every string and number of v, as ClickHouse would show
// them, naming the place by the field path.
func scanValue(sc *privacyprobe.Scanner, path string, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		sc.Scan(path, "", v.String())
	case reflect.Float64, reflect.Float32:
		sc.Scan(path, "", strconv.FormatFloat(v.Float(), 'f', -1, 64))
	case reflect.Int, reflect.Int64, reflect.Int32:
		sc.Scan(path, "", strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		sc.Scan(path, "", strconv.FormatUint(v.Uint(), 10))
	case reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 && v.Len() == 16 { // an event id, as a UUID
			b := make([]byte, 16)
			reflect.Copy(reflect.ValueOf(b), v)
			sc.Scan(path, "", fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
			return
		}
		fallthrough
	case reflect.Slice:
		for i := range v.Len() {
			scanValue(sc, path+"[]", v.Index(i))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				scanValue(sc, path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			scanValue(sc, path, v.Elem())
		}
	}
}

// TestProbeBatchesAreAccepted: the collector's stages accept every event
// the probe plants in: a plant in a dropped event would prove nothing.
func TestProbeBatchesAreAccepted(t *testing.T) {
	s := newSigner(t)
	pr := newProbe(t, s, privacyprobe.Config{Seed: 2, Plants: 400})
	pipelineRun(t, s, pr, scrub.Config{})
	for _, p := range pr.Plants {
		if !p.Accepted() {
			t.Errorf("plant #%d (%s in %s, %q) not accepted: %s", p.ID, p.Kind, p.Field, p.Sent, p.Outcome)
		}
	}
}

// TestProbeCatchesDisabledDetector: with the e-mail detector switched
// off (--scrub-disable email), the probe finds the e-mail addresses it
// planted in text the anonymizer stores as it is; with it on, it finds
// fewer. A probe that could not tell would prove nothing.
func TestProbeCatchesDisabledDetector(t *testing.T) {
	s := newSigner(t)
	cfg := privacyprobe.Config{Seed: 3, Plants: 150, Kinds: []privacyprobe.Kind{privacyprobe.Email}, Contexts: []string{"plain", "in a sentence"}}
	// Fields whose text the anonymizer stores (scrubbed): not the locale
	// and location codes (reduced to codes), the crash fingerprint
	// (hashed), session ids (re-keyed), headers and the connection.
	stored := func(p *privacyprobe.Plant) bool {
		return p.Kind == privacyprobe.Email && p.Accepted() && p.Context != privacyprobe.ContextHeader && p.Context != privacyprobe.ContextBytes &&
			p.Field != "device.locale" && !strings.HasPrefix(p.Field, "device.location.") && p.Field != "events[crash].fingerprint"
	}
	found := func(pr *privacyprobe.Probe, sc *privacyprobe.Scanner) (found, planted int) {
		seen := map[int]bool{}
		for _, f := range sc.Finds() {
			if stored(f.Plant) {
				seen[f.Plant.ID] = true
			}
		}
		for _, p := range pr.Plants {
			if stored(p) {
				planted++
			}
		}
		return len(seen), planted
	}
	on := newProbe(t, s, cfg)
	foundOn, _ := found(on, pipelineRun(t, s, on, scrub.Config{}))
	off := newProbe(t, s, cfg)
	foundOff, planted := found(off, pipelineRun(t, s, off, scrub.Config{Disabled: []scrub.Kind{scrub.Email}}))
	t.Logf("e-mail plants found in rows: %d with the detector on, %d of %d with it off", foundOn, foundOff, planted)
	if planted < 50 || foundOff < planted*95/100 {
		t.Errorf("with the e-mail detector off, only %d of %d e-mail plants found", foundOff, planted)
	}
	if foundOn*2 >= foundOff {
		t.Errorf("the e-mail detector makes little difference: %d found with it on, %d off", foundOn, foundOff)
	}
}
