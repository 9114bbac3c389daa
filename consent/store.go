package consent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Policy is an app's erasure policy.
type Policy string

// The erasure policies.
const (
	// PolicyAnonymous (the default) stores no link between rows and a
	// consent: revocation stops collection, and nothing stored can be tied
	// back to the person, so there is nothing to erase.
	PolicyAnonymous Policy = "anonymous"
	// PolicyErasable stores with every row a keyed pseudonym of the consent
	// id (an HMAC under a server secret, never the id), so a revocation
	// with erase can delete that consent's rows.
	PolicyErasable Policy = "erasable"
)

// Valid reports whether p is a known policy.
func (p Policy) Valid() bool { return p == PolicyAnonymous || p == PolicyErasable }

// App is a registered app.
type App struct {
	// ID is the app id, e.g. "com.example.notes".
	ID string
	// KeyHash is HashAppKey of the app's key; the key itself is never
	// stored.
	KeyHash string
	// Scopes are the scopes the app may ask its users for.
	Scopes []consentryv1.Scope
	// Policy is the erasure policy.
	Policy Policy
	// CreatedAt and UpdatedAt are when the app was registered and last
	// changed.
	CreatedAt, UpdatedAt time.Time
}

// Revocation records a withdrawn consent.
type Revocation struct {
	// ConsentHash is HashConsentID of the consent id: the store never holds
	// the id itself.
	ConsentHash string
	// AppID is the app the consent was given to.
	AppID string
	// RevokedAt is when the consent was withdrawn.
	RevokedAt time.Time
	// ExpiresAt is when the consent's token expires; after it the
	// revocation can be pruned, as the token is refused anyway.
	ExpiresAt time.Time
	// Erase is whether erasure was asked.
	Erase bool
}

// Store keeps apps, revocations and erasures durably. The clickhouse
// package implements it; every collector replica reads the same store.
type Store interface {
	// PutApp creates or replaces an app.
	PutApp(ctx context.Context, a App) error
	// Apps returns every app.
	Apps(ctx context.Context) ([]App, error)
	// PutRevocation records a revocation. Recording one twice is harmless.
	PutRevocation(ctx context.Context, r Revocation) error
	// Revocations returns the revocations recorded at or after since whose
	// tokens have not expired at now.
	Revocations(ctx context.Context, since, now time.Time) ([]Revocation, error)
	// PruneRevocations forgets revocations whose tokens expired before now.
	PruneRevocations(ctx context.Context, now time.Time) error
	// Erase deletes every stored row of app carrying consentKey, waits
	// until the deletion is complete, checks that no such row is left,
	// records it in the audit log with the time it was complete, and
	// returns the rows deleted per table. It fails, recording nothing,
	// if rows are left (e.g. stored while it ran).
	Erase(ctx context.Context, appID, consentKey string) (map[string]uint64, error)
	// ErasedConsentKeys returns the consent keys of every erasure the
	// audit log records as complete at or after since.
	ErasedConsentKeys(ctx context.Context, since time.Time) (map[string]struct{}, error)
	// UnsweptErasures returns, oldest first, up to limit consents whose
	// first erasure recorded at or after since was complete at or before
	// dueBy and whose latest erasure was complete less than gap after the
	// first: the erasures whose second sweep is not on record yet.
	UnsweptErasures(ctx context.Context, since, dueBy time.Time, gap time.Duration, limit int) ([]Erasure, error)
}

// Erasure is what the store's audit log holds of the erasures of one
// consent's rows.
type Erasure struct {
	// AppID is the app whose rows were erased.
	AppID string
	// ConsentKey is the pseudonym the erased rows carried.
	ConsentKey string
	// First and Last are when the first and the latest erasure recorded
	// were complete, in whole seconds.
	First, Last time.Time
}

// HashConsentID returns the hex SHA-256 of a consent id: how revocations
// name a consent without storing its id.
func HashConsentID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// HashAppKey returns the hex SHA-256 of an app key. App keys are 256-bit
// random strings, so a fast hash is safe; they are compared in constant
// time.
func HashAppKey(key string) string {
	sum := sha256.Sum256([]byte("consentry app key\x00" + key))
	return hex.EncodeToString(sum[:])
}
