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
	ExpiresAt   time.Time         `bson:"expires_at"`
}

// Done reports whether the record holds a response to replay.
func (r *IdempotencyRecord) Done() bool { return r.State == idempotencyDone }

// ClaimIdempotencyKey records that the request with key is being handled. It
// returns nil if the caller claimed the key and should handle the request, or
// the existing record: a request with this key was handled already (Done) or
// is being handled right now. A record past its expiry counts as absent — the
// embedded engine has no TTL indexes, so expiry is decided here.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, key, requestHash string, ttl time.Duration) (*IdempotencyRecord, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	for range 3 {
		created := now()
		rec := IdempotencyRecord{Key: key, RequestHash: requestHash, State: idempotencyPending, CreatedAt: created, ExpiresAt: created.Add(ttl)}
		_, err := s.idempotency.InsertOne(ctx, rec)
		if err == nil {
			return nil, nil
		}
		if err = translate(err); !errors.Is(err, ErrDuplicate) {
			return nil, err
		}
		var existing IdempotencyRecord
		err = translate(s.idempotency.FindOne(ctx, bson.D{{Key: fieldID, Value: key}}).Decode(&existing))
		switch {
		case errors.Is(err, ErrNotFound):
			continue // released meanwhile: claim again
		case err != nil:
			return nil, err
		case now().Before(existing.ExpiresAt):
			return &existing, nil
		}
		// Expired: remove exactly that record (not one a concurrent claimant
		// just made) and claim again.
		if err := s.deleteIdempotencyRecord(ctx, existing); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("store: could not claim idempotency key")
}

func (s *Store) deleteIdempotencyRecord(ctx context.Context, rec IdempotencyRecord) error {
	return s.deleteIfCreatedAt(ctx, s.idempotency, rec.Key, rec.CreatedAt)
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

// CompleteIdempotencyKey stores the response to replay for key.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, key string, status int, headers map[string]string, body []byte) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	_, err := s.idempotency.UpdateOne(ctx, bson.D{{Key: fieldID, Value: key}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: idempotencyFieldState, Value: idempotencyDone},
		{Key: "status", Value: status},
		{Key: "headers", Value: headers},
		{Key: "body", Value: body},
	}}})
	return translate(err)
}

// ReleaseIdempotencyKey forgets key, so that a retry runs the request again: for
// requests that failed without creating anything.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, key string) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	_, err := s.idempotency.DeleteOne(ctx, bson.D{{Key: fieldID, Value: key}})
	return translate(err)
}

// DeleteExpiredIdempotencyKeys removes records that expired before cutoff.
func (s *Store) DeleteExpiredIdempotencyKeys(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.deleteBefore(ctx, s.idempotency, idempotencyFieldExpiresAt, cutoff)
}
