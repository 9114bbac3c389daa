package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook request.
const (
	// HeaderID carries the alert's id, the same on every attempt: a
	// receiver drops an id it has seen (delivery is at least once).
	HeaderID = "Consentry-Alert-Id"
	// HeaderTimestamp carries the Unix time, in seconds, the request was
	// signed at (FormatJSON).
	HeaderTimestamp = "Consentry-Timestamp"
	// HeaderSignature carries "v1=" and the hex HMAC-SHA-256, under the
	// webhook's secret, of the timestamp, a dot and the body (FormatJSON).
	HeaderSignature = "Consentry-Signature"
)

// Alert is what a webhook is told about a crash group: only what the
// dashboard shows on its list (never anything about a device, a session
// or a consent).
type Alert struct {
	// ID names the alert: the same on every attempt to deliver it.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// AppID and Group (the fingerprint, in hex) name the crash group.
	AppID string `json:"app_id"`
	Group string `json:"group"`
	// ExceptionType, Message (scrubbed) and Culprit describe it.
	ExceptionType string `json:"exception_type"`
	Message       string `json:"message,omitempty"`
	Culprit       string `json:"culprit,omitempty"`
	// Crashes and Sessions count its crashes and distinct sessions today
	// (UTC).
	Crashes  uint64 `json:"crashes_today"`
	Sessions uint64 `json:"sessions_today"`
	// Versions are the app versions it crashed in today, oldest first.
	Versions []string `json:"versions"`
	// FirstSeen is its first crash ever; LastSeen its latest.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// ResolvedIn is the version it was resolved in (KindRegressed).
	ResolvedIn string `json:"resolved_in,omitempty"`
	// URL is the group's dashboard page, if Rules.DashboardURL is set.
	URL string `json:"url,omitempty"`
}

// title is the one-line description of a.
func (a *Alert) title() string {
	if a.Message == "" {
		return a.ExceptionType
	}
	return a.ExceptionType + ": " + a.Message
}

// headline says what happened.
func (a *Alert) headline() string {
	switch a.Kind {
	case KindNew:
		return "New crash group in " + a.AppID
	case KindRegressed:
		return "Regressed crash group in " + a.AppID + " (resolved in " + a.ResolvedIn + ")"
	case KindEscalating:
		return "Escalating crash group in " + a.AppID
	}
	return "Crash group in " + a.AppID
}

// Sign returns the HeaderSignature value for body sent at timestamp (Unix
// seconds) under secret.
func Sign(secret []byte, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is returned by Verify for a request that was not signed
// with the secret, or not recently enough.
var ErrBadSignature = errors.New("alerts: bad webhook signature")

// Verify checks a FormatJSON request as a receiver should: the signature
// header over the timestamp header and the raw body, under secret, with a
// timestamp within tolerance of now (which stops replays of old
// requests). It compares in constant time.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrBadSignature, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is not within %v of now", ErrBadSignature, timestamp, tolerance)
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature)) {
		return ErrBadSignature
	}
	return nil
}

// slackEscape escapes the characters Slack's mrkdwn gives a meaning to.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackBody returns a's Slack message: a text (what notifications show)
// and blocks.
func slackBody(a *Alert) ([]byte, error) {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type block struct {
		Type     string `json:"type"`
		Text     *text  `json:"text,omitempty"`
		Elements []text `json:"elements,omitempty"`
	}
	title := slackEscape.Replace(a.title())
	main := "*" + slackEscape.Replace(a.headline()) + "*\n`" + strings.ReplaceAll(title, "`", "'") + "`"
	if a.Culprit != "" {
		main += "\nin " + slackEscape.Replace(a.Culprit)
	}
	if a.URL != "" {
		main += "\n<" + a.URL + "|Open in the dashboard>"
	}
	versions := "none"
	if len(a.Versions) > 0 {
		versions = strings.Join(a.Versions, ", ")
	}
	context := fmt.Sprintf("%d crashes in %d sessions today · versions %s · first seen %s",
		a.Crashes, a.Sessions, slackEscape.Replace(versions), a.FirstSeen.UTC().Format("2006-01-02 15:04 UTC"))
	return json.Marshal(struct {
		Text   string  `json:"text"`
		Blocks []block `json:"blocks"`
	}{
		Text: slackEscape.Replace(a.headline()) + ": " + title,
		Blocks: []block{
			{Type: "section", Text: &text{Type: "mrkdwn", Text: main}},
			{Type: "context", Elements: []text{{Type: "mrkdwn", Text: context}}},
		},
	})
}

// errDelivery is an attempt that failed; whether to retry is the caller's
// call.
var errDelivery = errors.New("webhook delivery failed")

// maxResponse is how much of a response body is read (and dropped) so the
// connection can be reused.
const maxResponse = 64 << 10

// deliver POSTs a to w once; an error means the receiver did not take it.
// Errors never name the URL: it is a secret.
func deliver(ctx context.Context, client *http.Client, w Webhook, a *Alert, now time.Time) error {
	var (
		body []byte
		err  error
	)
	if w.Format == FormatSlack {
		body, err = slackBody(a)
	} else {
		body, err = json.Marshal(a)
	}
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: bad request", errDelivery)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "consentry-alerts/1")
	req.Header.Set(HeaderID, a.ID)
	if w.Format == FormatJSON {
		ts := now.Unix()
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, Sign([]byte(w.Secret), ts, body))
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error quotes the URL: keep only what went wrong.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("%w: %w", errDelivery, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: status %d", errDelivery, resp.StatusCode)
	}
	return nil
}
