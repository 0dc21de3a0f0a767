package vuln

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/paved/paved/internal/gate/sbom"
)

// DB is an OSV database loaded into memory, indexed by ecosystem and package name.
type DB struct {
	// Path is where it was read from; Records counts what it holds.
	Path    string
	Records int
	index   map[key][]entry
}

type key struct{ ecosystem, name string }

type entry struct {
	rec *Record
	aff int // index into rec.Affected
}

// Load reads an OSV database: a directory (searched recursively) of *.json records and
// all.zip (or any *.zip) archives of them, a single zip, or a single record. Withdrawn
// records are left out.
func Load(path string) (*DB, error) {
	db := &DB{Path: path, index: map[key][]entry{}}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("vuln: the OSV database: %w (download an ecosystem's all.zip from osv.dev, or point at a directory of OSV JSON records)", err)
	}
	if !fi.IsDir() {
		if err := db.loadFile(path); err != nil {
			return nil, err
		}
		return db, nil
	}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".zip") {
			return db.loadFile(p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return db, nil
}

func (db *DB) loadFile(p string) error {
	if strings.HasSuffix(p, ".zip") {
		z, err := zip.OpenReader(p)
		if err != nil {
			return fmt.Errorf("vuln: %s: %w", p, err)
		}
		defer z.Close()
		for _, f := range z.File {
			if !strings.HasSuffix(f.Name, ".json") {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return fmt.Errorf("vuln: %s: %s: %w", p, f.Name, err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("vuln: %s: %s: %w", p, f.Name, err)
			}
			if err := db.add(p+"!"+f.Name, b); err != nil {
				return err
			}
		}
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("vuln: %w", err)
	}
	return db.add(p, b)
}

func (db *DB) add(name string, b []byte) error {
	r, err := ParseRecord(name, b)
	if err != nil {
		return err
	}
	if r.Withdrawn != "" {
		return nil
	}
	db.Records++
	for i, a := range r.Affected {
		k := key{ecosystemBase(a.Package.Ecosystem), normaliseName(ecosystemBase(a.Package.Ecosystem), a.Package.Name)}
		db.index[k] = append(db.index[k], entry{rec: r, aff: i})
	}
	return nil
}

// ecosystemBase drops a release suffix: "Debian:11" is Debian.
func ecosystemBase(e string) string {
	b, _, _ := strings.Cut(e, ":")
	return b
}

func normaliseName(eco, name string) string {
	if eco == sbom.PyPI {
		return sbom.Component{Ecosystem: sbom.PyPI, Name: name}.PURL()[len("pkg:pypi/"):]
	}
	return name
}

// Cache keeps loaded databases between stages: the real ones take seconds to read. An
// entry is reloaded when the path's modification time changes.
type Cache struct {
	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	mod time.Time
	db  *DB
}

// Get loads path, or returns the database loaded before if the path did not change.
func (c *Cache) Get(path string) (*DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Load(path) // for its message
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[path]; ok && e.mod.Equal(fi.ModTime()) {
		return e.db, nil
	}
	db, err := Load(path)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]cached{}
	}
	c.m[path] = cached{mod: fi.ModTime(), db: db}
	return db, nil
}
