package sqlite_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/store/storetest"
)

func TestPromotions(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	paths := map[storetest.PromotionStore]string{}
	storetest.ExercisePromotions(t, storetest.PromotionHarness{
		Open: func(t *testing.T) storetest.PromotionStore {
			path := filepath.Join(t.TempDir(), "paved.db")
			s := open(t, path)
			mu.Lock()
			paths[s] = path
			mu.Unlock()
			return s
		},
		Reopen: func(t *testing.T, s storetest.PromotionStore) storetest.PromotionStore {
			mu.Lock()
			path := paths[s]
			mu.Unlock()
			if err := s.(*sqlite.Store).Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, path)
		},
	})
}
