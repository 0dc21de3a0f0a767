// Package local is the executor that runs stages on this machine: each stage attempt in its
// own workspace, its steps in one sandbox.
//
// # Workspaces
//
// A stage attempt's workspace is Root/<run>/<stage>-<attempt> (names made path-safe). It is
// filled from the job's source — a `git clone --shared` of a local repository (no objects
// copied: a checkout costs the files, not the history) or a plain clone of a URL, then a
// detached checkout of the commit; or a copy of a directory, .git included — then the
// upstream artifacts are materialised from the artifact store (Config.Artifacts, a
// cache.Blobs) and verified against their digests. After the steps succeed what the
// artifact globs match is stored there by digest (hashed while it is copied in, so an
// artifact two stages or two runs produce is kept once) and listed in the Result. The
// workspace is removed when the stage ends, whatever the outcome. Everything that reads what
// steps wrote (artifacts out) or writes into a tree steps shaped (artifacts in) goes through
// os.Root and keeps symlinks as symlinks: a step cannot turn the copy into a read or write
// of a host file.
//
// # One sandbox per stage
//
// Steps share a workspace and run one after another, so one sandbox per stage is enough, and
// it keeps the cost of a step close to the cost of spawning its shell (a sandbox per step
// would add a bubblewrap start, several milliseconds, to every `echo`). Inside the sandbox
// runs a small init: the paved binary itself, re-executed with InitArg, which cmd/paved's
// main hands to RunInit before anything else. Re-executing paved means no helper binary to
// install or keep in step, and the init is the same build as the host (a protocol version
// argument checks it).
//
// The host gives the init the whole job on stdin as JSON (workspace, shell, environment,
// steps, limits); the init inherits nothing else from paved, environment included. The init
// runs each step as `sh -e -c RUN` or `bash --noprofile --norc -eo pipefail -c RUN` in the
// workspace, stops at the first that fails, and writes back over its stdout a stream of
// binary length-prefixed frames: step started, output chunk, step finished (exit code,
// duration), done. Framing, not lines, because output is arbitrary bytes and the host must
// see all of a step's output before it sees the step finish.
//
// Every step writes its combined stdout and stderr into one pipe that the init keeps. When a
// step's shell has exited, the init writes a random sentinel into that pipe; the pipe being
// FIFO, everything the step wrote comes before it, so the output before the sentinel is
// exactly the step's. That needs neither end-of-file nor a timeout: a step that leaves
// `server &` running (still holding the pipe) ends at once, and the server keeps a working
// stdout for the next steps instead of dying of SIGPIPE; its later output goes to the step
// running at the time. Background processes end with the stage.
//
// # bubblewrap
//
// When bwrap is installed and works (tried once in New), the init runs in a bubblewrap
// sandbox: the host file system read-only; fresh /dev, /proc (own pid namespace), /tmp and
// /run; the home of paved's user, /root, /home, Root (every other workspace) and
// Config.Hide (paved's data directory) covered by empty tmpfs; then the stage's workspace
// bound writable at its own path, so it stays reachable under a hidden directory, and
// read-only the git object stores a shared clone borrows from. All namespaces are new except
// the network (builds download); all capabilities are dropped (a sandbox started by root
// would otherwise keep enough of them to remount / read-write). The init is pid 1 of the
// sandbox's pid namespace and not dumpable, so steps can neither kill it nor open its end
// of the pipe to paved to forge frames. Killing it kills every process of the stage, setsid
// or not, and bubblewrap dies with paved.
//
// # Process groups
//
// Without bubblewrap the init runs in its own process group with the same protocol but no
// file system isolation: steps see what paved's user sees. It only keeps the process tree
// in hand: the init is a child subreaper, so every process a step started stays its
// descendant even after double-forking or setsid, and is killed at the end of the stage,
// on cancellation, or (Pdeathsig) when paved dies. HOME and TMPDIR are still private to
// the stage. New logs a warning when "auto" falls back to this.
package local
