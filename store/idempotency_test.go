// Tests of the idempotency-key records: claim, replay of a pending or completed
// request, release, expiry (an expired record counts as absent, also when
// several requests find it at once), concurrent claims of one key, and the
// sweep of expired records.
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
	rec, err := s.ClaimIdempotencyKey(ctx, "key-1", "body-hash-1", time.Hour)
	if err != nil || rec != nil {
		t.Fatalf("first claim = %+v, %v; want nil, nil (claimed)", rec, err)
	}
	got, err := s.GetIdempotencyRecord(ctx, "key-1")
	if err != nil {
		t.Fatalf("GetIdempotencyRecord: %v", err)
	}
	if got.Done() || got.RequestHash != "body-hash-1" || got.CreatedAt.Before(before) || !got.ExpiresAt.Equal(got.CreatedAt.Add(time.Hour)) {
		t.Errorf("pending record = %+v", got)
	}

	// A retry while the first request is being handled sees the pending record.
	rec, err = s.ClaimIdempotencyKey(ctx, "key-1", "body-hash-1", time.Hour)
	if err != nil || rec == nil || rec.Done() || rec.RequestHash != "body-hash-1" {
		t.Fatalf("claim of a pending key = %+v, %v; want the pending record", rec, err)
	}
	// So does a request reusing the key with another body: the caller compares the hashes.
	rec, err = s.ClaimIdempotencyKey(ctx, "key-1", "body-hash-2", time.Hour)
	if err != nil || rec == nil || rec.RequestHash != "body-hash-1" {
		t.Fatalf("claim with another body = %+v, %v; want the original record", rec, err)
	}

	headers := map[string]string{"Location": "/customers/1", "Content-Type": "application/json"}
	if err := s.CompleteIdempotencyKey(ctx, "key-1", 201, headers, []byte(`{"id":"1"}`)); err != nil {
		t.Fatalf("CompleteIdempotencyKey: %v", err)
	}
	rec, err = s.ClaimIdempotencyKey(ctx, "key-1", "body-hash-1", time.Hour)
	if err != nil || rec == nil || !rec.Done() || rec.Status != 201 || string(rec.Body) != `{"id":"1"}` ||
		rec.Headers["Location"] != "/customers/1" || rec.Headers["Content-Type"] != "application/json" {
		t.Fatalf("claim of a completed key = %+v, %v; want the stored response", rec, err)
	}

	if err := s.ReleaseIdempotencyKey(ctx, "key-1"); err != nil {
		t.Fatalf("ReleaseIdempotencyKey: %v", err)
	}
	if _, err := s.GetIdempotencyRecord(ctx, "key-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("record after release: %v, want ErrNotFound", err)
	}
	if rec, err := s.ClaimIdempotencyKey(ctx, "key-1", "body-hash-3", time.Hour); err != nil || rec != nil {
		t.Errorf("claim after release = %+v, %v; want a fresh claim", rec, err)
	}
	if err := s.ReleaseIdempotencyKey(ctx, "never-claimed"); err != nil {
		t.Errorf("releasing an unknown key: %v", err)
	}
	if _, err := s.GetIdempotencyRecord(ctx, "never-claimed"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetIdempotencyRecord(unknown) = %v, want ErrNotFound", err)
	}
}

func TestIdempotencyKeyExpired(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	old := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
	rawInsert(t, s.idempotency.Collection, bson.D{{Key: "_id", Value: "stale"}, {Key: "request_hash", Value: "old-hash"}, {Key: "state", Value: "done"},
		{Key: "status", Value: 201}, {Key: "created_at", Value: old}, {Key: "expires_at", Value: old.Add(time.Hour)}})

	rec, err := s.ClaimIdempotencyKey(ctx, "stale", "new-hash", time.Hour)
	if err != nil || rec != nil {
		t.Fatalf("claim of an expired key = %+v, %v; want a fresh claim", rec, err)
	}
	got, err := s.GetIdempotencyRecord(ctx, "stale")
	if err != nil || got.Done() || got.RequestHash != "new-hash" || !got.CreatedAt.After(old) {
		t.Errorf("record after reclaiming an expired key = %+v, %v", got, err)
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
				recs[i], err = s.ClaimIdempotencyKey(t.Context(), "k", fmt.Sprint("hash-", i), time.Hour)
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
