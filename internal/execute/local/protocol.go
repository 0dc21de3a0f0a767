package local

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// protocolVersion is the init's first argument. The host and the init can be different builds
// (InitPath replaced on disk by an upgrade while the server runs); a mismatch must fail the
// stage with a clear message, not misparse frames.
const protocolVersion = "paved-init/1"

// initSpec is what the host sends the init on its stdin, as one JSON document, before the
// first step. It is complete: the init inherits no environment from the host.
type initSpec struct {
	// Dir is the workspace as the steps see it; every step runs there.
	Dir string `json:"dir"`
	// Shell is "sh" or "bash"; it is looked up in the PATH of Env.
	Shell string `json:"shell"`
	// Env is the whole environment of every step, "KEY=value".
	Env   []string `json:"env"`
	Steps []string `json:"steps"`
	// Mkdir are directories the init creates (0700) before the first step: HOME.
	Mkdir  []string `json:"mkdir,omitempty"`
	Limits limits   `json:"limits"`
}

// limits are resource limits the init sets on itself so every step inherits them. Zero means
// "leave as inherited"; RLIMIT_CORE is always 0 so a crashing build does not fill the
// workspace with cores.
type limits struct {
	NoFile   uint64 `json:"nofile,omitempty"`
	FileSize uint64 `json:"fsize,omitempty"`
	Procs    uint64 `json:"nproc,omitempty"`
}

// Frames flow from the init to the host over the init's stdout. Each frame is a 9-byte header
// (type, step index as big-endian uint32, payload length as big-endian uint32) and the
// payload. A binary length prefix, not lines, because step output is arbitrary bytes and
// the host must be able to tell exactly where a step's output ends.
type frameType byte

const (
	// frameStarted: step began; no payload.
	frameStarted frameType = 'S'
	// frameOutput: a chunk of the step's combined stdout and stderr.
	frameOutput frameType = 'O'
	// frameFinished: step ended; payload is exit code (int32) and duration in ns (int64).
	frameFinished frameType = 'F'
	// frameDone: the init ran what it had to (all steps, or up to the first failure) and
	// cleaned up; without it an end of stream means the init died. Payload: what the
	// steps' processes used (usagePayload), or none.
	frameDone frameType = 'D'
	// frameError: the init could not do its part (bad spec, limits); payload is a message.
	frameError frameType = 'E'
)

const (
	frameHeaderLen = 9
	// maxFramePayload bounds what the host allocates for one frame; the init sends output in
	// chunks far below it.
	maxFramePayload = 1 << 20
	finishedLen     = 12
)

// appendFrame appends one encoded frame to buf.
func appendFrame(buf []byte, t frameType, step int, payload []byte) []byte {
	buf = append(buf, byte(t))
	buf = binary.BigEndian.AppendUint32(buf, uint32(step))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(payload)))
	return append(buf, payload...)
}

func finishedPayload(code int, took time.Duration) []byte {
	p := make([]byte, 0, finishedLen)
	p = binary.BigEndian.AppendUint32(p, uint32(int32(code)))
	return binary.BigEndian.AppendUint64(p, uint64(took))
}

// usageLen is a done frame's payload: CPU time (user + system) in µs and the largest
// resident set in KiB of the init's reaped children, both int64.
const usageLen = 16

func usagePayload(cpu time.Duration, maxRSSKiB int64) []byte {
	p := make([]byte, usageLen)
	binary.BigEndian.PutUint64(p, uint64(cpu.Microseconds()))
	binary.BigEndian.PutUint64(p[8:], uint64(maxRSSKiB))
	return p
}

// parseUsage reads a done frame's payload; an empty one (nothing measured) is zero.
func parseUsage(p []byte) (cpu time.Duration, maxRSSKiB int64, err error) {
	switch len(p) {
	case 0:
		return 0, 0, nil
	case usageLen:
		return time.Duration(binary.BigEndian.Uint64(p)) * time.Microsecond, int64(binary.BigEndian.Uint64(p[8:])), nil
	}
	return 0, 0, fmt.Errorf("done frame of %d bytes, want 0 or %d", len(p), usageLen)
}

func parseFinished(p []byte) (code int, took time.Duration, err error) {
	if len(p) != finishedLen {
		return 0, 0, fmt.Errorf("finished frame of %d bytes, want %d", len(p), finishedLen)
	}
	return int(int32(binary.BigEndian.Uint32(p))), time.Duration(binary.BigEndian.Uint64(p[4:])), nil
}

// frameReader decodes frames; the payload it returns is valid until the next call.
type frameReader struct {
	r   *bufio.Reader
	hdr [frameHeaderLen]byte
	buf []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 128<<10)}
}

// next returns io.EOF only at a clean frame boundary; a stream cut inside a frame is
// io.ErrUnexpectedEOF.
func (fr *frameReader) next() (frameType, int, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	t := frameType(fr.hdr[0])
	step := int(binary.BigEndian.Uint32(fr.hdr[1:5]))
	n := binary.BigEndian.Uint32(fr.hdr[5:9])
	if n > maxFramePayload {
		return 0, 0, nil, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFramePayload)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	p := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, nil, err
	}
	return t, step, p, nil
}
