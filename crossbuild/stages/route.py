"""The route stage: which node of the builder builds which platform, before anything is built.

Read-only. After preflight (which already failed on a platform no node serves or a node that
is down), it prints the platform -> node table on a dry run and whenever the builder has more
than one node, warns about routing that works but emulates what a native node could build,
and refuses an output the publisher cannot assemble from several nodes (an OCI layout), up
front and in one line, instead of after the build.
"""

from __future__ import annotations

from crossbuild import builder, buildx, doctor, output
from crossbuild.errors import UserError
from crossbuild.pipeline import Context, Stage


class Route(Stage):
    name = "route"

    def run(self, ctx: Context) -> None:
        route = ctx.memo.get("routing")  # preflight read the builder already
        if route is None:
            info = buildx.inspect(ctx.cfg.builder.name)
            if info is None:
                return  # preflight said so already (a dry run goes on without a builder)
            route = builder.route(ctx.cfg, info, ctx.platforms)
            ctx.memo["routing"] = route
        if ctx.dry_run or len(route.nodes) > 1:
            output.step(f"routing on builder '{ctx.cfg.builder.name}'")
            output.table(doctor.ROUTE_HEADERS, route.rows())
        for warning in route.warnings():
            output.warn(warning)
        used = route.used()
        publisher = ctx.publisher
        if publisher is not None and publisher.single_node and len(used) > 1:
            problem = (
                f"cannot write an {publisher.name}: builder '{ctx.cfg.builder.name}' splits the platforms across "
                + ", ".join(f"'{n.name}' ({', '.join(map(str, route.served_by(n)))})" for n in used)
                + f" and {publisher.single_node}: build one node's platforms at a time "
                + f"(PLATFORMS={','.join(map(str, route.served_by(used[0])))}), or push with `make image.multiarch` "
                + "and copy the index with `skopeo copy --all docker://<image> oci-archive:<file>`"
            )
            if not ctx.dry_run:
                raise UserError(problem)
            ctx.blockers.append(problem)
