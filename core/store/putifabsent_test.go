package store_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/persisting/persisting/core/store"
)

// raceOneWins has one writer per store put the same name at once, rounds
// times: exactly one wins each round, the others get os.ErrExist, and the
// object holds the winner's bytes. A store may be given more than once (one
// store shared by goroutines) or once per writer (clients of separate
// processes).
func raceOneWins(t *testing.T, stores []store.Store, rounds int) {
	t.Helper()
	for round := range rounds {
		name := fmt.Sprintf("_versions/%d.manifest", round)
		errs := make([]error, len(stores))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w, s := range stores {
			wg.Go(func() {
				<-start
				errs[w] = s.PutIfAbsent(name, []byte(fmt.Sprintf("writer %d", w)))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both won", round, winner, w)
				}
				winner = w
			case !errors.Is(err, os.ErrExist):
				t.Fatalf("round %d: writer %d: %v, want os.ErrExist", round, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		if got, err := stores[0].Get(name); err != nil || string(got) != fmt.Sprintf("writer %d", winner) {
			t.Fatalf("round %d: object %q (%v), winner %d", round, got, err, winner)
		}
	}
}

func TestPutIfAbsentConcurrentOneWins(t *testing.T) {
	s := store.Local(nil, t.TempDir())
	raceOneWins(t, []store.Store{s, s, s, s, s, s, s, s}, 20)
	if got := list(t, s, "_versions"); len(got) != 20 {
		t.Fatalf("_versions holds %d names (staging files left?): %q", len(got), got)
	}
}
