package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/cli"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// appsUsage describes the apps subcommands.
const appsUsage = `Usage: consentry apps <add|list|rotate-key|set-policy> [flags]

Manages the apps allowed to ask their users for consent. An app's key is
printed once, when it is made (add, rotate-key), and stored only hashed.
A collector picks up a new app or key at once, at the first grant that
needs it, and other changes within its 10 s refresh interval.

  add         register an app: --app-id, --scopes, --policy
  list        list the registered apps
  rotate-key  issue a new key for --app-id; the old key stops working
  set-policy  change --app-id's --policy and/or --scopes
`

func runApps(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	sub, fs, args, err := subcommand("apps", args, appsUsage, stderr)
	if err != nil {
		return err
	}
	var ch chFlags
	ch.register(fs)
	appID := fs.String("app-id", "", "the app's `id`, e.g. com.example.notes")
	scopes := fs.String("scopes", "", "comma-separated `scopes` the app may ask for: analytics, crash_reports, location (add: default all)")
	policy := fs.String("policy", "", "erasure `policy`: anonymous (default: rows carry no link to a consent) or erasable (revocation with erase deletes the consent's rows)")
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	c, _, err := ch.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	store := consent.Store(c)
	switch sub {
	case "list":
		return listApps(ctx, store, stdout)
	case "add":
		return addApp(ctx, store, stdout, *appID, *scopes, *policy)
	case "rotate-key":
		return updateApp(ctx, store, stdout, *appID, func(a *consent.App) (string, error) {
			key := newAppKey()
			a.KeyHash = consent.HashAppKey(key)
			return key, nil
		})
	case "set-policy":
		if *policy == "" && *scopes == "" {
			return errors.New("apps set-policy: give --policy and/or --scopes")
		}
		return updateApp(ctx, store, stdout, *appID, func(a *consent.App) (string, error) {
			if *policy != "" {
				p, err := parsePolicy(*policy)
				if err != nil {
					return "", err
				}
				a.Policy = p
			}
			if *scopes != "" {
				s, err := parseScopes(*scopes)
				if err != nil {
					return "", err
				}
				a.Scopes = s
			}
			return "", nil
		})
	default:
		fmt.Fprint(stderr, appsUsage)
		return fmt.Errorf("unknown apps command %q", sub)
	}
}

// newAppKey returns a random 256-bit app key.
func newAppKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return "ck_" + base64.RawURLEncoding.EncodeToString(b)
}

func parsePolicy(s string) (consent.Policy, error) {
	p := consent.Policy(s)
	if !p.Valid() {
		return "", fmt.Errorf("policy %q: want anonymous or erasable", s)
	}
	return p, nil
}

func parseScopes(s string) ([]consentryv1.Scope, error) {
	var out []consentryv1.Scope
	for _, f := range strings.Split(s, ",") {
		sc := consentryv1.Scope(strings.TrimSpace(f))
		if sc == "" {
			continue
		}
		if !sc.Valid() {
			return nil, fmt.Errorf("scope %q: want analytics, crash_reports or location", sc)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scopes given")
	}
	return out, nil
}

func findApp(ctx context.Context, store consent.Store, id string) (consent.App, bool, error) {
	apps, err := store.Apps(ctx)
	if err != nil {
		return consent.App{}, false, err
	}
	for _, a := range apps {
		if a.ID == id {
			return a, true, nil
		}
	}
	return consent.App{}, false, nil
}

func addApp(ctx context.Context, store consent.Store, w io.Writer, id, scopes, policy string) error {
	if !consentryv1.ValidAppID(id) {
		return fmt.Errorf("apps add: --app-id %q: want 1-128 letters, digits, '.', '_' or '-'", id)
	}
	if _, exists, err := findApp(ctx, store, id); err != nil {
		return err
	} else if exists {
		return fmt.Errorf("apps add: app %s exists; use rotate-key or set-policy", id)
	}
	sc, err := parseScopes(cmp.Or(scopes, "analytics,crash_reports,location"))
	if err != nil {
		return fmt.Errorf("apps add: %w", err)
	}
	p, err := parsePolicy(cmp.Or(policy, string(consent.PolicyAnonymous)))
	if err != nil {
		return fmt.Errorf("apps add: %w", err)
	}
	key := newAppKey()
	now := time.Now().UTC()
	a := consent.App{ID: id, KeyHash: consent.HashAppKey(key), Scopes: sc, Policy: p, CreatedAt: now, UpdatedAt: now}
	if err := store.PutApp(ctx, a); err != nil {
		return fmt.Errorf("apps add: %w", err)
	}
	fmt.Fprintf(w, "app %s registered (policy %s, scopes %s)\napp key (shown once; store it in your app's build secrets):\n%s\n", id, p, joinScopes(sc), key)
	return nil
}

// updateApp applies change to app id and stores it; a key change returns
// the new key, which is printed.
func updateApp(ctx context.Context, store consent.Store, w io.Writer, id string, change func(*consent.App) (string, error)) error {
	a, ok, err := findApp(ctx, store, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("app %q is not registered", id)
	}
	key, err := change(&a)
	if err != nil {
		return err
	}
	a.UpdatedAt = time.Now().UTC()
	if err := store.PutApp(ctx, a); err != nil {
		return err
	}
	fmt.Fprintf(w, "app %s updated (policy %s, scopes %s)\n", a.ID, a.Policy, joinScopes(a.Scopes))
	if key != "" {
		fmt.Fprintf(w, "new app key (shown once; it works at once, and the old key stops working within the collectors' refresh interval):\n%s\n", key)
	}
	return nil
}

func listApps(ctx context.Context, store consent.Store, w io.Writer) error {
	apps, err := store.Apps(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(apps, func(a, b consent.App) int { return strings.Compare(a.ID, b.ID) })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tPOLICY\tSCOPES\tUPDATED")
	for _, a := range apps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.ID, a.Policy, joinScopes(a.Scopes), a.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func joinScopes(s []consentryv1.Scope) string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return strings.Join(out, ",")
}
