"""The PostgreSQL rows: check() and send() on the PostgreSQL store against the file store, same run.

Both stores get the same world: 20 agents, 1,000 claims (200 through ``reserve()`` on
PostgreSQL, where bulk seeding has no file format to write), the same unclaimed path, a
1 KiB message. A throwaway schema (``?schema=bench_<pid>``) is dropped at the end.
"""

from __future__ import annotations

import os

from .fixtures import CHECKED
from .harness import fmt_time, paired


def measure_pg(ctx, base_url: str, Row, REPORT):  # -> list[Row]
    import psycopg

    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.store.postgres import PostgresStore

    schema = f"bench_{os.getpid()}"
    url = base_url + ("&" if "?" in base_url else "?") + f"schema={schema}"
    proj = ctx.project("pg")
    fproj = ctx.project("pg_files")
    n_agents, n_claims = ctx.n(20, 3), ctx.n(200, 10)
    pg_meshes = []
    try:
        for i in range(n_agents):
            m = Mesh(proj.root, f"agent{i:03d}", cwd=proj.root, store=PostgresStore(url, proj.root))
            m.join(pid=os.getpid())
            pg_meshes.append(m)
        for j in range(n_claims):
            pg_meshes[j % n_agents].reserve([f"pkg{j % 50}/mod{j}/"], f"bench claim {j}")
        fproj.join(n_agents)
        fproj.seed_claims(n_claims)
        pg_checker = Mesh(proj.root, "checker", cwd=proj.root, store=PostgresStore(url, proj.root))
        f_checker = fproj.mesh("checker")
        assert pg_checker.check(CHECKED) is None and f_checker.check(CHECKED) is None
        assert pg_checker.check("pkg0/mod0/x.py") is not None
        rounds = ctx.n(2000, 50)
        s_pg, s_f = paired(lambda: pg_checker.check(CHECKED), lambda: f_checker.check(CHECKED), rounds, warmup=50)
        text = "x" * 1024
        a_pg, b_pg = pg_meshes[0], pg_meshes[1]
        a_f, b_f = fproj.meshes[0], fproj.meshes[1]
        sync = psycopg.connect(base_url, autocommit=True).execute("SHOW synchronous_commit").fetchone()[0]
        t_pg, t_f = paired(lambda: a_pg.send(b_pg.agent, text), lambda: a_f.send(b_f.agent, text), ctx.n(500, 20))
    finally:
        for m in pg_meshes:
            try:
                m.close()
            except Exception:  # noqa: BLE001
                pass
        with psycopg.connect(base_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return [
        Row("pg_check", f"PostgreSQL backend: check() unclaimed path ({n_claims} claims, loopback)",
            f"file store check() ({fmt_time(s_f.median)})", "report (target: median ≤ 1 ms)",
            f"median {fmt_time(s_pg.median)}, p99 {fmt_time(s_pg.p99)}", s_pg.median / s_f.median, REPORT,
            {"postgres": s_pg.to_dict(), "files": s_f.to_dict()}),
        Row("pg_send", f"PostgreSQL backend: send() of 1 KiB (synchronous_commit={sync})",
            f"file store send() ({fmt_time(t_f.median)})", "report (target: median ≤ 2 ms)",
            f"median {fmt_time(t_pg.median)}, p99 {fmt_time(t_pg.p99)}", t_pg.median / t_f.median, REPORT,
            {"postgres": t_pg.to_dict(), "files": t_f.to_dict()}),
    ]
