package collector

import "github.com/consentry/consentry/anonymizer"

// eventIDKey returns the key the anonymizer re-keys event ids with: the
// one configured (Config.Anonymizer.EventIDKey), or one derived from the
// consent secret, which every replica shares, so that every replica
// stores a retried event under the same event_id.
func (a *App) eventIDKey() []byte {
	if k := a.cfg.Anonymizer.EventIDKey; len(k) > 0 {
		return k
	}
	return anonymizer.EventIDKey(a.consent.secret)
}

// StoredEventID returns the event_id the collector stores for an event
// that the app appID sent with the id id: a keyed hash of it (see
// anonymizer.StoredEventID), never id itself. For tools and tests that
// follow an event from the SDK into ClickHouse.
func (a *App) StoredEventID(appID string, id []byte) [16]byte {
	return anonymizer.StoredEventID(a.eventIDKey(), appID, id)
}
