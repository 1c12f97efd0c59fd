// Tests of the idempotency-key records: claim, replay of a pending or completed
// request, release, expiry (an expired record counts as absent, also when
// several requests find it at once), the takeover of an abandoned pending
// record, concurrent claims of one key, and the sweep of expired records.
package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestIdempotencyKeyLifecycle(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()

	before := time.Now().Truncate(time.Millisecond)
	claim, rec, err := s.ClaimIdempotencyKey(ctx, "key-1", "body-hash-1", time.Hour)
	if err != nil || claim == nil || rec != nil {
		t.Fatalf("first claim = %+v, %+v, %v; want a claim", claim, rec, err)
	}
	got, err := s.GetIdempotencyRecord(ctx, "key-1")
	if err != nil {
		t.Fatalf("GetIdempotencyRecord: %v", err)
	}
	// A pending record expires with its lease.
	if got.Done() || got.RequestHash != "body-hash-1" || got.CreatedAt.Before(before) || !got.CreatedAt.Equal(claim.CreatedAt) ||
		!got.ExpiresAt.Equal(got.CreatedAt.Add(time.Hour)) {
		t.Errorf("pending record = %+v (claim %+v)", got, claim)
	}

	// A retry while the first request is being handled sees the pending record.
	other, rec, err := s.ClaimIdempotencyKey(ctx, "key-1", "body-hash-1", time.Hour)
	if err != nil || other != nil || rec == nil || rec.Done() || rec.RequestHash != "body-hash-1" {
		t.Fatalf("claim of a pending key = %+v, %+v, %v; want the pending record", other, rec, err)
	}
	// So does a request reusing the key with another body: the caller compares the hashes.
	other, rec, err = s.ClaimIdempotencyKey(ctx, "key-1", "body-hash-2", time.Hour)
	if err != nil || other != nil || rec == nil || rec.RequestHash != "body-hash-1" {
		t.Fatalf("claim with another body = %+v, %+v, %v; want the original record", other, rec, err)
	}

	headers := map[string]string{"Location": "/customers/1", "Content-Type": "application/json"}
	completed := time.Now().Truncate(time.Millisecond)
	if err := s.CompleteIdempotencyKey(ctx, *claim, 24*time.Hour, 201, headers, []byte(`{"id":"1"}`)); err != nil {
		t.Fatalf("CompleteIdempotencyKey: %v", err)
	}
	other, rec, err = s.ClaimIdempotencyKey(ctx, "key-1", "body-hash-1", time.Hour)
	if err != nil || other != nil || rec == nil || !rec.Done() || rec.Status != 201 || string(rec.Body) != `{"id":"1"}` ||
		rec.Headers["Location"] != "/customers/1" || rec.Headers["Content-Type"] != "application/json" {
		t.Fatalf("claim of a completed key = %+v, %+v, %v; want the stored response", other, rec, err)
	}
	// Only the response is kept for the whole TTL, counted from completion.
	if rec.ExpiresAt.Before(completed.Add(24*time.Hour)) || rec.ExpiresAt.After(time.Now().Add(24*time.Hour)) {
		t.Errorf("completed record expires at %s, want 24 h after %s", rec.ExpiresAt, completed)
	}

	if err := s.ReleaseIdempotencyKey(ctx, *claim); err != nil {
		t.Fatalf("ReleaseIdempotencyKey: %v", err)
	}
	if _, err := s.GetIdempotencyRecord(ctx, "key-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("record after release: %v, want ErrNotFound", err)
	}
	if claim, rec, err := s.ClaimIdempotencyKey(ctx, "key-1", "body-hash-3", time.Hour); err != nil || claim == nil || rec != nil {
		t.Errorf("claim after release = %+v, %+v, %v; want a fresh claim", claim, rec, err)
	}
	if err := s.ReleaseIdempotencyKey(ctx, IdempotencyClaim{Key: "never-claimed", CreatedAt: before}); err != nil {
		t.Errorf("releasing an unknown key: %v", err)
	}
	if _, err := s.GetIdempotencyRecord(ctx, "never-claimed"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetIdempotencyRecord(unknown) = %v, want ErrNotFound", err)
	}
}

// A pending record holds its key until it expires, however old: its request
// may have created its record before its process died, and running it again
// could create it twice. A failed one (its request panicked) too, and says so.
func TestIdempotencyKeyPendingHoldsUntilExpiry(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	old := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
	rawInsert(t, s.idempotency.Collection, bson.D{{Key: "_id", Value: "abandoned"}, {Key: "request_hash", Value: "hash"}, {Key: "state", Value: "pending"},
		{Key: "created_at", Value: old}, {Key: "expires_at", Value: old.Add(24 * time.Hour)}})
	claim, rec, err := s.ClaimIdempotencyKey(ctx, "abandoned", "hash", 24*time.Hour)
	if err != nil || claim != nil || rec == nil || rec.Done() || rec.Failed() || !rec.CreatedAt.Equal(old) {
		t.Errorf("claim of an old pending key = %+v, %+v, %v; want its pending record", claim, rec, err)
	}

	claim, _, err = s.ClaimIdempotencyKey(ctx, "panicked", "hash", 24*time.Hour)
	if err != nil || claim == nil {
		t.Fatalf("claim: %+v, %v", claim, err)
	}
	if err := s.FailIdempotencyKey(ctx, *claim); err != nil {
		t.Fatalf("FailIdempotencyKey: %v", err)
	}
	if again, rec, err := s.ClaimIdempotencyKey(ctx, "panicked", "hash", 24*time.Hour); err != nil || again != nil || rec == nil || !rec.Failed() {
		t.Errorf("claim of a failed key = %+v, %+v, %v; want its failed record", again, rec, err)
	}
}

func TestIdempotencyKeyExpired(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	old := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
	rawInsert(t, s.idempotency.Collection, bson.D{{Key: "_id", Value: "stale"}, {Key: "request_hash", Value: "old-hash"}, {Key: "state", Value: "done"},
		{Key: "status", Value: 201}, {Key: "created_at", Value: old}, {Key: "expires_at", Value: old.Add(time.Hour)}})

	claim, rec, err := s.ClaimIdempotencyKey(ctx, "stale", "new-hash", time.Hour)
	if err != nil || claim == nil || rec != nil {
		t.Fatalf("claim of an expired key = %+v, %+v, %v; want a fresh claim", claim, rec, err)
	}
	got, err := s.GetIdempotencyRecord(ctx, "stale")
	if err != nil || got.Done() || got.RequestHash != "new-hash" || !got.CreatedAt.After(old) {
		t.Errorf("record after reclaiming an expired key = %+v, %v", got, err)
	}
	// The expired record's claim, should its request still answer, reaches
	// nothing: the key belongs to the new claim.
	first := IdempotencyClaim{Key: "stale", CreatedAt: old}
	if err := s.CompleteIdempotencyKey(ctx, first, time.Hour, 201, nil, []byte("late")); !errors.Is(err, ErrNotFound) {
		t.Errorf("completing the expired claim = %v, want ErrNotFound", err)
	}
	if err := s.ReleaseIdempotencyKey(ctx, first); err != nil {
		t.Errorf("releasing the expired claim: %v", err)
	}
	if got, err := s.GetIdempotencyRecord(ctx, "stale"); err != nil || !got.CreatedAt.Equal(claim.CreatedAt) {
		t.Errorf("the new claim's record after the old claim's complete and release = %+v, %v", got, err)
	}
}

func TestIdempotencyKeyConcurrentClaims(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store)
	}{
		{"new key", func(*testing.T, *Store) {}},
		{"expired key", func(t *testing.T, s *Store) {
			old := time.Now().Add(-2 * time.Hour).UTC()
			rawInsert(t, s.idempotency.Collection, bson.D{{Key: "_id", Value: "k"}, {Key: "request_hash", Value: "old"}, {Key: "state", Value: "pending"},
				{Key: "created_at", Value: old}, {Key: "expires_at", Value: old.Add(time.Hour)}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openTestStore(t)
			tc.setup(t, s)
			const n = 12
			recs := make([]*IdempotencyRecord, n)
			errs := runConcurrently(n, func(i int) error {
				var err error
				var claim *IdempotencyClaim
				claim, recs[i], err = s.ClaimIdempotencyKey(t.Context(), "k", fmt.Sprint("hash-", i), time.Hour)
				if err == nil && (claim == nil) == (recs[i] == nil) {
					err = fmt.Errorf("claim %+v and record %+v: want exactly one", claim, recs[i])
				}
				return err
			})
			winners := 0
			var winner int
			for i := range n {
				switch {
				case errs[i] != nil:
					t.Errorf("claim %d: %v", i, errs[i])
				case recs[i] == nil:
					winners++
					winner = i
				}
			}
			if winners != 1 {
				t.Fatalf("%d claims won, want exactly 1", winners)
			}
			for i := range n {
				if errs[i] == nil && recs[i] != nil && recs[i].RequestHash != fmt.Sprint("hash-", winner) {
					t.Errorf("claim %d saw the record of %q, want the winner's hash-%d", i, recs[i].RequestHash, winner)
				}
			}
			if got, err := s.GetIdempotencyRecord(t.Context(), "k"); err != nil || got.RequestHash != fmt.Sprint("hash-", winner) {
				t.Errorf("stored record %+v, %v; want the winner's", got, err)
			}
		})
	}
}

func TestDeleteExpiredIdempotencyKeys(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	cutoff := time.Now().UTC().Truncate(time.Millisecond)
	for key, expires := range map[string]time.Time{
		"gone-1":    cutoff.Add(-time.Hour),
		"gone-2":    cutoff.Add(-time.Millisecond),
		"at-cutoff": cutoff,
		"valid":     cutoff.Add(time.Hour),
	} {
		rawInsert(t, s.idempotency.Collection, bson.D{{Key: "_id", Value: key}, {Key: "state", Value: "done"}, {Key: "created_at", Value: expires.Add(-time.Hour)}, {Key: "expires_at", Value: expires}})
	}
	n, err := s.DeleteExpiredIdempotencyKeys(ctx, cutoff)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredIdempotencyKeys = %d, %v; want 2", n, err)
	}
	for key, want := range map[string]bool{"gone-1": false, "gone-2": false, "at-cutoff": true, "valid": true} {
		_, err := s.GetIdempotencyRecord(ctx, key)
		if want && err != nil || !want && !errors.Is(err, ErrNotFound) {
			t.Errorf("record %s after the sweep: %v (want kept: %v)", key, err, want)
		}
	}
}
