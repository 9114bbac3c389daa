package anonymizer

import (
	"time"

	"github.com/consentry/consentry/anonymizer/kanon"
)

// GeneralizeConfig configures k-anonymity over the stored rows: every
// stored combination of quasi-identifiers (app version, device model, OS
// version, locale, region, ...) is shared by at least K consents of its
// app and day. Package kanon holds rows back and generalizes them, after
// the anonymizer; the anonymizer gives every row the member key kanon
// counts consents with (pipeline.Common.Member). docs/privacy.md
// explains it.
type GeneralizeConfig = kanon.Config

// memberKeys derives the member keys of one batch's rows: a keyed hash of
// the batch's consent id under the salt of each event's UTC day. The salt
// of the current day is the one session ids are keyed with; another day's
// is used while this replica still holds it (yesterday's, for ten minutes
// after midnight; tomorrow's, fetched ahead), else the row gets no member
// key (0) and is never counted as a consent. Events of one batch mostly
// share a day, so the last key is remembered.
type memberKeys struct {
	on       bool
	salts    *Salts
	consent  []byte
	today    int64
	todayKey uint64
	lastDay  int64
	lastKey  uint64
}

// newMemberKeys returns the member keys for a batch of consentID received
// at now, when today's salt is salt; with on false every key is 0.
func newMemberKeys(on bool, salts *Salts, consentID string, now time.Time, salt []byte) memberKeys {
	if !on || consentID == "" {
		return memberKeys{}
	}
	id := []byte(consentID)
	today := kanon.DayNumber(now)
	k := keyed(salt, id)
	return memberKeys{on: true, salts: salts, consent: id, today: today, todayKey: k, lastDay: today, lastKey: k}
}

// of returns the member key of an event at t.
func (m *memberKeys) of(t time.Time) uint64 {
	if !m.on {
		return 0
	}
	day := kanon.DayNumber(t)
	switch day {
	case m.today:
		return m.todayKey
	case m.lastDay:
		return m.lastKey
	}
	var k uint64
	if salt, ok := m.salts.Known(t); ok {
		k = keyed(salt, m.consent)
	}
	m.lastDay, m.lastKey = day, k
	return k
}
