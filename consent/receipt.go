package consent

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// receiptType is the "typ" header of a signed erasure receipt. Consent
// tokens and receipts are signed by the same keys; the type keeps one from
// being accepted as the other.
const receiptType = "erasure-receipt+jwt"

// Erasure outcomes, as in consentryv1.ErasureReceipt.outcome.
const (
	// OutcomeErased: the consent's rows were deleted (possibly none were
	// stored).
	OutcomeErased = "erased"
	// OutcomeAnonymous: the app's policy stores no link between rows and a
	// consent, so nothing stored can be tied to it and nothing is deleted.
	OutcomeAnonymous = "anonymous"
)

// ErrReceiptInvalid is returned by VerifyReceipt for anything that is not
// a receipt signed by a key of the ring.
var ErrReceiptInvalid = errors.New("erasure receipt invalid")

// Receipt is what an erasure did, as stated by a signed erasure receipt: a
// compact JWS (EdDSA, "typ" erasure-receipt+jwt) whose claims are
//
//	sub           the consent's pseudonym (ConsentKey), never the consent id
//	aud           the app id
//	outcome       "erased" or "anonymous"
//	deleted_rows  rows deleted per table
//	erased_at     when the deletion completed (Unix milliseconds)
//	iat           the same time in Unix seconds
//	iss           "consentry"
//
// The counts are those of the deletion that ran while Revoke was served.
// A second sweep runs later (ServiceConfig.ResweepAfter) to delete rows of
// batches that passed the consent check just before the revocation and
// were still being stored; its deletions are recorded in the store's audit
// log, not in this receipt. A receipt does not expire: it remains
// verifiable as long as its key's public half is kept.
type Receipt struct {
	// ConsentKey is the pseudonym of the consent id.
	ConsentKey string
	// AppID is the app the consent was given to.
	AppID string
	// Outcome is OutcomeErased or OutcomeAnonymous.
	Outcome string
	// DeletedRows is the number of rows deleted per table.
	DeletedRows map[string]uint64
	// ErasedAt is when the deletion completed, to the millisecond.
	ErasedAt time.Time
	// KeyID is the id of the key that signed the receipt; set by
	// VerifyReceipt, ignored by SignReceipt.
	KeyID string
}

type receiptClaims struct {
	jwt.RegisteredClaims
	Outcome     string            `json:"outcome"`
	DeletedRows map[string]uint64 `json:"deleted_rows"`
	ErasedAt    int64             `json:"erased_at"`
}

// SignReceipt returns rc as a compact JWS signed by the ring's signing key.
func (r *KeyRing) SignReceipt(rc Receipt) (string, error) {
	if r.signing == nil {
		return "", errors.New("sign erasure receipt: no signing key configured")
	}
	if rc.ConsentKey == "" || rc.AppID == "" || rc.ErasedAt.IsZero() {
		return "", errors.New("sign erasure receipt: consent key, app id and time are required")
	}
	if rc.Outcome != OutcomeErased && rc.Outcome != OutcomeAnonymous {
		return "", errors.New("sign erasure receipt: unknown outcome")
	}
	rows := rc.DeletedRows
	if rows == nil {
		rows = map[string]uint64{}
	}
	s, err := r.signJWS(receiptClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:  rc.ConsentKey,
			Issuer:   Issuer,
			Audience: jwt.ClaimStrings{rc.AppID},
			IssuedAt: jwt.NewNumericDate(rc.ErasedAt),
		},
		Outcome:     rc.Outcome,
		DeletedRows: rows,
		ErasedAt:    rc.ErasedAt.UnixMilli(),
	}, receiptType)
	if err != nil {
		return "", fmt.Errorf("sign erasure receipt: %w", err)
	}
	return s, nil
}

// VerifyReceipt checks that receipt is an erasure receipt signed by a key
// of the ring and returns what it states. Errors wrap ErrReceiptInvalid.
func (r *KeyRing) VerifyReceipt(receipt string) (Receipt, error) {
	var rc receiptClaims
	kid, typ, err := r.parseJWS(receipt, &rc)
	if err != nil {
		return Receipt{}, fmt.Errorf("%w: %v", ErrReceiptInvalid, err)
	}
	if typ != receiptType {
		return Receipt{}, fmt.Errorf("%w: typ is not %s", ErrReceiptInvalid, receiptType)
	}
	if rc.Subject == "" || len(rc.Audience) != 1 || rc.Audience[0] == "" || rc.ErasedAt <= 0 ||
		(rc.Outcome != OutcomeErased && rc.Outcome != OutcomeAnonymous) {
		return Receipt{}, fmt.Errorf("%w: missing or unknown claims", ErrReceiptInvalid)
	}
	return Receipt{
		ConsentKey:  rc.Subject,
		AppID:       rc.Audience[0],
		Outcome:     rc.Outcome,
		DeletedRows: rc.DeletedRows,
		ErasedAt:    time.UnixMilli(rc.ErasedAt).UTC(),
		KeyID:       kid,
	}, nil
}
