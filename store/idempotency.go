package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Idempotency field names.
const (
	idempotencyFieldState     = "state"
	idempotencyFieldExpiresAt = "expires_at"
)

// Idempotency record states.
const (
	idempotencyPending = "pending" // the first request is being handled
	idempotencyDone    = "done"    // its response is stored for replay
	idempotencyFailed  = "failed"  // it failed in a way that leaves its outcome unknown
)

// IdempotencyRecord remembers a create request sent with an Idempotency-Key and,
// once it is answered, the response to replay to its retries.
type IdempotencyRecord struct {
	Key         string            `bson:"_id"`          // a hash of who sent it, where, and the key
	RequestHash string            `bson:"request_hash"` // a hash of the body, to refuse reuse with another
	State       string            `bson:"state"`
	Status      int               `bson:"status,omitempty"`
	Headers     map[string]string `bson:"headers,omitempty"`
	Body        []byte            `bson:"body,omitempty"`
	CreatedAt   time.Time         `bson:"created_at"`
	// ExpiresAt is when the key is forgotten: ttl after it was claimed, then
	// (once Done) ttl after its response was stored.
	ExpiresAt time.Time `bson:"expires_at"`
}

// Done reports whether the record holds a response to replay.
func (r *IdempotencyRecord) Done() bool { return r.State == idempotencyDone }

// Failed reports whether the first request failed without a response to
// replay, and perhaps after creating its record (see FailIdempotencyKey).
func (r *IdempotencyRecord) Failed() bool { return r.State == idempotencyFailed }

// IdempotencyClaim is the right to handle the request with one key, won by
// ClaimIdempotencyKey and given up by CompleteIdempotencyKey or
// ReleaseIdempotencyKey. Its CreatedAt tells this claim from a later one of
// the same key: once the record has expired another request may claim the key
// anew, and what the first one does after that must not touch the new claim.
type IdempotencyClaim struct {
	Key       string
	CreatedAt time.Time
}

// ClaimIdempotencyKey records that the request with key is being handled. It
// returns either a claim — the caller should handle the request, then complete
// or release the claim — or the existing record: a request with this key was
// handled already (Done) or is being handled right now.
//
// A record past its expiry counts as absent (the embedded engine has no TTL
// indexes, so expiry is decided here). A pending one holds its key until then
// even if its request is long over — its process died, or its outcome could
// not be recorded — since whether that request created its record is unknown,
// and running it again could create it twice; the caller tells such a
// record's retries so.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, key, requestHash string, ttl time.Duration) (*IdempotencyClaim, *IdempotencyRecord, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	for range 3 {
		created := now()
		rec := IdempotencyRecord{Key: key, RequestHash: requestHash, State: idempotencyPending, CreatedAt: created, ExpiresAt: created.Add(ttl)}
		_, err := s.idempotency.InsertOne(ctx, rec)
		if err == nil {
			return &IdempotencyClaim{Key: key, CreatedAt: created}, nil, nil
		}
		if err = translate(err); !errors.Is(err, ErrDuplicate) {
			return nil, nil, err
		}
		var existing IdempotencyRecord
		err = translate(s.idempotency.FindOne(ctx, bson.D{{Key: fieldID, Value: key}}).Decode(&existing))
		switch {
		case errors.Is(err, ErrNotFound):
			continue // released meanwhile: claim again
		case err != nil:
			return nil, nil, err
		case now().Before(existing.ExpiresAt):
			return nil, &existing, nil
		}
		// Expired: remove exactly that record (not one a concurrent claimant
		// just made) and claim again. Of several requests that found it, one
		// inserts; the others find its record.
		if err := s.deleteIdempotencyRecord(ctx, IdempotencyClaim{Key: key, CreatedAt: existing.CreatedAt}); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, errors.New("store: could not claim idempotency key")
}

// deleteIdempotencyRecord deletes the record of claim if it is still that
// claim's: a later claim of the same key stays.
func (s *Store) deleteIdempotencyRecord(ctx context.Context, claim IdempotencyClaim) error {
	return s.deleteIfCreatedAt(ctx, s.idempotency, claim.Key, claim.CreatedAt)
}

// GetIdempotencyRecord returns the record of key, or ErrNotFound.
func (s *Store) GetIdempotencyRecord(ctx context.Context, key string) (*IdempotencyRecord, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var rec IdempotencyRecord
	if err := s.idempotency.FindOne(ctx, bson.D{{Key: fieldID, Value: key}}).Decode(&rec); err != nil {
		return nil, translate(err)
	}
	return &rec, nil
}

// CompleteIdempotencyKey stores the response to replay for the key of claim,
// for ttl from now. It returns ErrNotFound if the claim was lost: its record
// expired and another request claimed the key anew.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, claim IdempotencyClaim, ttl time.Duration, status int, headers map[string]string, body []byte) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	ok, err := s.writeIfCreatedAt(ctx, s.idempotency, claim.Key, claim.CreatedAt, func(filter bson.D) (bool, error) {
		res, err := s.idempotency.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{
			{Key: idempotencyFieldState, Value: idempotencyDone},
			{Key: "status", Value: status},
			{Key: "headers", Value: headers},
			{Key: "body", Value: body},
			{Key: idempotencyFieldExpiresAt, Value: now().Add(ttl)},
		}}})
		return err == nil && res.MatchedCount == 1, err
	})
	if err == nil && !ok {
		err = ErrNotFound
	}
	return err
}

// FailIdempotencyKey records that the request of claim failed at a point
// where it may have created its record (it panicked): the key stays taken
// until it expires, and is never run again.
func (s *Store) FailIdempotencyKey(ctx context.Context, claim IdempotencyClaim) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	_, err := s.writeIfCreatedAt(ctx, s.idempotency, claim.Key, claim.CreatedAt, func(filter bson.D) (bool, error) {
		res, err := s.idempotency.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: idempotencyFieldState, Value: idempotencyFailed}}}})
		return err == nil && res.MatchedCount == 1, err
	})
	return err
}

// ReleaseIdempotencyKey forgets the key of claim, so that a retry runs the
// request again: for requests that failed without creating anything. A claim
// that was lost already is not an error.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, claim IdempotencyClaim) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	return s.deleteIdempotencyRecord(ctx, claim)
}

// DeleteExpiredIdempotencyKeys removes records that expired before cutoff,
// abandoned pending ones included.
func (s *Store) DeleteExpiredIdempotencyKeys(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.deleteBefore(ctx, s.idempotency, idempotencyFieldExpiresAt, cutoff)
}
