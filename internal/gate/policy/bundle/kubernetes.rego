# paved's built-in policy for Kubernetes manifests (gate/policy). Each deny or warn is an
# object {"rule": ID, "msg": TEXT}; the rule ids are what with: disable names and what
# docs/gates.md lists. input is one object of a manifest; data.paved.params holds the
# stage's with: options (see params in policy.go for the defaults).
package paved.kubernetes

import rego.v1

params := data.paved.params

# The pod spec of a Pod or of a workload's pod template.
pod_spec := input.spec if input.kind == "Pod"

pod_spec := input.spec.template.spec if input.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}

pod_spec := input.spec.jobTemplate.spec.template.spec if input.kind == "CronJob"

containers contains {"c": c, "type": "container"} if some c in pod_spec.containers

containers contains {"c": c, "type": "initContainer"} if some c in pod_spec.initContainers

containers contains {"c": c, "type": "ephemeralContainer"} if some c in pod_spec.ephemeralContainers

exempt(image) if {
	some pattern in params.exempt_images
	glob_or_equal(pattern, image)
}

glob_or_equal(pattern, image) if pattern == image

glob_or_equal(pattern, image) if {
	endswith(pattern, "*")
	startswith(image, trim_suffix(pattern, "*"))
}

# privileged-container: a privileged container has the host's devices and capabilities.
deny contains {"rule": "privileged-container", "msg": sprintf("%s %q is privileged", [x.type, x.c.name])} if {
	some x in containers
	x.c.securityContext.privileged == true
	not exempt(x.c.image)
}

# host-namespace: sharing the host's PID, IPC or network namespace.
deny contains {"rule": "host-namespace", "msg": sprintf("the pod shares the host's %s namespace (%s: true)", [ns, field])} if {
	some field, ns in {"hostPID": "PID", "hostIPC": "IPC", "hostNetwork": "network"}
	pod_spec[field] == true
}

# host-path: hostPath volumes, unless under an allowed prefix (read-only where required).
deny contains {"rule": "host-path", "msg": sprintf("volume %q mounts host path %q, outside the allowed host paths", [v.name, v.hostPath.path])} if {
	some v in pod_spec.volumes
	v.hostPath
	not host_path_allowed(v)
}

host_path_allowed(v) if {
	some a in params.allowed_host_paths
	path_under(v.hostPath.path, a.path_prefix)
	not a.read_only
}

host_path_allowed(v) if {
	some a in params.allowed_host_paths
	path_under(v.hostPath.path, a.path_prefix)
	a.read_only
	every x in containers {
		every m in object.get(x.c, "volumeMounts", []) {
			m.name != v.name
		}
	}
}

host_path_allowed(v) if {
	some a in params.allowed_host_paths
	path_under(v.hostPath.path, a.path_prefix)
	a.read_only
	mounts := [m | some x in containers; some m in object.get(x.c, "volumeMounts", []); m.name == v.name]
	count(mounts) > 0
	every m in mounts {
		m.readOnly == true
	}
}

path_under(p, prefix) if p == prefix

path_under(p, prefix) if startswith(p, concat("", [trim_suffix(prefix, "/"), "/"]))

# resource-limits: every container sets CPU and memory limits, within the maxima if set.
# A maximum of "-1" stops requiring that limit.
deny contains {"rule": "resource-limits", "msg": sprintf("%s %q sets no %s limit", [x.type, x.c.name, r])} if {
	some x in containers
	x.type != "ephemeralContainer"
	some r, max in {"cpu": params.max_cpu, "memory": params.max_memory}
	max != "-1"
	not x.c.resources.limits[r]
	not exempt(x.c.image)
}

deny contains {"rule": "resource-limits", "msg": sprintf("%s %q: %s limit %v is above the maximum %v", [x.type, x.c.name, r, lim, max])} if {
	some x in containers
	some r, max in {"cpu": params.max_cpu, "memory": params.max_memory}
	not max in {"", "-1"}
	lim := x.c.resources.limits[r]
	units.parse(sprintf("%v", [lim])) > units.parse(max)
	not exempt(x.c.image)
}

# image-tag: an image must name a tag other than the disallowed ones (latest), or a digest.
deny contains {"rule": "image-tag", "msg": sprintf("%s %q: image %q has no tag or digest", [x.type, x.c.name, x.c.image])} if {
	some x in containers
	not contains(x.c.image, "@")
	not image_tag(x.c.image)
	not exempt(x.c.image)
}

deny contains {"rule": "image-tag", "msg": sprintf("%s %q: image %q uses the tag %q", [x.type, x.c.name, x.c.image, tag])} if {
	some x in containers
	not contains(x.c.image, "@")
	tag := image_tag(x.c.image)
	tag in params.disallowed_tags
	not exempt(x.c.image)
}

# The tag is after the last colon that follows the last slash (a registry port is not a tag).
image_tag(image) := tag if {
	parts := split(image, "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	tag := split(last, ":")[1]
}

# image-registry: with allowed registries set, every image starts with one of them.
deny contains {"rule": "image-registry", "msg": sprintf("%s %q: image %q is not from an allowed registry (%s)", [x.type, x.c.name, x.c.image, concat(", ", params.allowed_registries)])} if {
	count(params.allowed_registries) > 0
	some x in containers
	not registry_allowed(x.c.image)
	not exempt(x.c.image)
}

registry_allowed(image) if {
	some r in params.allowed_registries
	glob_or_equal(r, image)
}

# An entry ending in / is a registry or organisation prefix; one ending in * a glob; any
# other names one repository, allowed with any tag or digest.
registry_allowed(image) if {
	some r in params.allowed_registries
	endswith(r, "/")
	startswith(image, r)
}

registry_allowed(image) if {
	some r in params.allowed_registries
	some sep in [":", "@"]
	startswith(image, concat("", [r, sep]))
}

# run-as-root: every container must run as a non-root user: runAsNonRoot (its own or the
# pod's) or a runAsUser other than 0, and never an explicit runAsUser 0.
deny contains {"rule": "run-as-root", "msg": sprintf("%s %q may run as root (set runAsNonRoot: true or a non-zero runAsUser)", [x.type, x.c.name])} if {
	some x in containers
	not non_root(x.c)
	not exempt(x.c.image)
}

deny contains {"rule": "run-as-root", "msg": sprintf("%s %q runs as user 0", [x.type, x.c.name])} if {
	some x in containers
	run_as_user(x.c) == 0
	not exempt(x.c.image)
}

run_as_user(c) := c.securityContext.runAsUser

run_as_user(c) := pod_spec.securityContext.runAsUser if not c.securityContext.runAsUser

non_root(c) if c.securityContext.runAsNonRoot == true

non_root(c) if {
	pod_spec.securityContext.runAsNonRoot == true
	not c.securityContext.runAsNonRoot == false
}

non_root(c) if run_as_user(c) > 0

# capabilities-not-dropped: every container drops the required capabilities (ALL).
deny contains {"rule": "capabilities-not-dropped", "msg": sprintf("%s %q does not drop capabilities %v", [x.type, x.c.name, sort(missing)])} if {
	some x in containers
	dropped := {upper(d) | some d in object.get(x.c, ["securityContext", "capabilities", "drop"], [])}
	required := {upper(r) | some r in params.required_drop_capabilities}
	not "ALL" in dropped
	missing := required - dropped
	count(missing) > 0
	not exempt(x.c.image)
}

# capabilities-added: capabilities added beyond the allowed ones.
deny contains {"rule": "capabilities-added", "msg": sprintf("%s %q adds capabilities %v that are not allowed", [x.type, x.c.name, sort(extra)])} if {
	some x in containers
	added := {upper(a) | some a in object.get(x.c, ["securityContext", "capabilities", "add"], [])}
	allowed := {upper(a) | some a in params.allowed_capabilities}
	not "*" in allowed
	extra := added - allowed
	count(extra) > 0
	not exempt(x.c.image)
}

# Warnings: worth fixing, not worth stopping a deployment for.
warn contains {"rule": "resource-requests", "msg": sprintf("%s %q sets no CPU or memory request", [x.type, x.c.name])} if {
	some x in containers
	x.type == "container"
	some r in ["cpu", "memory"]
	not x.c.resources.requests[r]
}

warn contains {"rule": "read-only-root-filesystem", "msg": sprintf("%s %q has a writable root filesystem (set readOnlyRootFilesystem: true)", [x.type, x.c.name])} if {
	some x in containers
	x.type == "container"
	not x.c.securityContext.readOnlyRootFilesystem == true
}
