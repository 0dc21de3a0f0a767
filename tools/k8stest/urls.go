package main

import (
	"fmt"
	"net/url"
)

func parseURLs(s string) ([]url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse url %q: %w", s, err)
	}
	return []url.URL{*u}, nil
}
