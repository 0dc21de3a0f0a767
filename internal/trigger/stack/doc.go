// Package stack is stack detection for `paved init`: it inspects a repository (go.mod,
// package.json and its lockfile, pom.xml, build.gradle(.kts), requirements.txt,
// poetry.lock, pyproject.toml, Cargo.toml, Chart.yaml, Kubernetes manifests, *.tf,
// Dockerfile, Makefile) and writes a pipeline file that builds and tests it.
//
// Detection reads an fs.FS, so the same code serves a directory on disk (os.DirFS) and a
// commit of a registered repository (trigger.Git.FS), which is how the server runs a repo
// that has no pipeline file. It looks at the repository's top directory and at each
// top-level subdirectory: every directory with a stack of its own is a project, and a
// project in a subdirectory gets stage names prefixed with the directory's name, so a
// monorepo gets one set of stages per project.
//
// The pipeline it writes must compile with the Options of the build that runs it: stage
// kinds this build lacks (gates under uses:, deploy:) are written as commented-out YAML
// that names the capability enabling them, and become live stages once Options.Kinds
// lists them. Every detected file is explained in a comment at the top of the file.
package stack
