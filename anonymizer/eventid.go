package anonymizer

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
)

// Event ids. The SDK draws a random 16-byte id for every event, and the
// event tables merge the rows of a retried batch by it (ReplacingMergeTree,
// uniqExact(event_id)). Nothing stops an SDK from sending another id as
// event id, such as the device's advertising id (an IDFA or a GAID is a
// random UUID too, and cannot be told from one), which would then be
// stored in every row. So the id the SDK sent is never stored: the
// anonymizer stores in its place the first 16 bytes of
//
//	HMAC-SHA-256(HMAC-SHA-256(key, app id), id)
//
// where key is derived from the server secret every replica shares
// (EventIDKey). It is deterministic, so a retry, through any replica,
// stores the same event_id and still merges; it cannot be turned back
// into the id; and without the key it cannot be linked to the device's
// advertising id, nor to the same id sent by another app. (Whoever holds
// the key and a device's advertising id can compute what that id would be
// stored as, as with the consent pseudonyms of erasable apps.) The SDK's
// response refers to events by their index, so nothing on the wire
// changes.

// eventIDKeyLabel names what EventIDKey derives from the secret.
const eventIDKeyLabel = "consentry event id key v1"

// EventIDKey derives the key event ids are re-keyed with from the server
// secret (the collector's consent secret): HMAC-SHA-256 of a fixed label,
// so the secret itself keys nothing else this way.
func EventIDKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(eventIDKeyLabel))
	return m.Sum(nil)
}

// StoredEventID returns the event_id that a Stage configured with key
// stores for the event id id of an app: for tools and tests that follow
// an event from the SDK into ClickHouse.
func StoredEventID(key []byte, appID string, id []byte) [16]byte {
	return newEventIDs(key, appID).of(id)
}

// eventIDs re-keys the event ids of one app, for a batch: its hash is
// keyed once, and each id costs two SHA-256 blocks and no allocation.
type eventIDs struct {
	mac hash.Hash
	sum []byte // room for a sum, so that Sum does not allocate
}

func newEventIDs(key []byte, appID string) eventIDs {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(appID))
	return eventIDs{mac: hmac.New(sha256.New, m.Sum(nil)), sum: make([]byte, 0, sha256.Size)}
}

// of returns the stored id of the event id id.
func (e eventIDs) of(id []byte) [16]byte {
	e.mac.Reset()
	e.mac.Write(id)
	return [16]byte(e.mac.Sum(e.sum[:0]))
}
