"""One full audit (no LLM) of a few million rows and 100 distinct slow query shapes.

Builds its own database (bench_audit: customers, products, orders, order items; ~2.75M
rows, only primary keys indexed), runs every query shape a few times so pg_stat_statements
sees it, then times one run_audit with verification on. In the same run it builds each
recommended index alone (CREATE INDEX in a rolled-back transaction, as verification
does), so verification can be compared with its floor.

Goals on the 2-core machine: collect + analyze + advise for the 100 queries <= 10 s
(`audit_100_queries_s`); verification <= 1.5x the builds alone
(`audit_verify_ratio_to_builds`). Any failed step exits non-zero.
"""

import os
import random
import time
from collections.abc import Callable

from _common import bench_database, emit, log
from psycopg.types.numeric import Int8

# The audit's thresholds for this run: every shape runs RUNS times.
RUNS = 3
os.environ.setdefault("DBARCHITECT_MIN_CALLS", str(RUNS))
os.environ.setdefault("DBARCHITECT_MIN_TOTAL_SHARE", "0.001")
os.environ["LLM_PROVIDER"] = ""  # no LLM: the audit's own work only
os.environ.setdefault("DBARCHITECT_VERIFY", "on")

CUSTOMERS = 200_000
PRODUCTS = 50_000
ORDERS = 1_000_000
ITEMS = 1_500_000
STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")

SCHEMA = [
    """CREATE TABLE customers (
        id bigint PRIMARY KEY, email text NOT NULL, name text NOT NULL, country text NOT NULL,
        segment text NOT NULL, referral_code text, created_at timestamptz NOT NULL,
        prefs jsonb NOT NULL)""",
    """CREATE TABLE products (
        id bigint PRIMARY KEY, sku text NOT NULL, name text NOT NULL, category text NOT NULL,
        brand text NOT NULL, price numeric(10, 2) NOT NULL, attrs jsonb NOT NULL,
        tags text[] NOT NULL)""",
    """CREATE TABLE orders (
        id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,
        region text NOT NULL, total numeric(12, 2) NOT NULL, coupon_code text,
        created_at timestamptz NOT NULL, shipped_at timestamptz)""",
    """CREATE TABLE order_items (
        id bigint PRIMARY KEY, order_id bigint NOT NULL, product_id bigint NOT NULL,
        quantity int NOT NULL, unit_price numeric(10, 2) NOT NULL)""",
    "SELECT setseed(0.42)",
    f"""INSERT INTO customers
        SELECT g, 'c' || g || '@example.com', 'Customer ' || g,
               (ARRAY['VN','US','DE','FR','JP','BR','IN','GB','CN','KR'])[1 + g % 10],
               'seg_' || (g % 40), CASE WHEN g % 50 = 0 THEN 'R' || g END,
               timestamptz '2024-01-01' + (g % 700) * interval '1 day'
                   + (g % 86400) * interval '1 s',
               jsonb_build_object('lang', (ARRAY['vi','en','zh'])[1 + g % 3], 'vip', g % 97 = 0)
        FROM generate_series(1::bigint, {CUSTOMERS}) AS g""",
    f"""INSERT INTO products
        SELECT g, 'SKU-' || g, 'Product ' || g || ' ' || md5(g::text), 'cat_' || (g % 200),
               'brand_' || (g % 1000), 1 + (g % 500),
               jsonb_build_object('color', (ARRAY['red','blue','green','black'])[1 + g % 4],
                                  'size', g % 9, 'batch', g % 5000),
               ARRAY['t' || (g % 300), 't' || (g % 17)]
        FROM generate_series(1::bigint, {PRODUCTS}) AS g""",
    f"""INSERT INTO orders
        SELECT g, 1 + (g * 7919) % {CUSTOMERS},
               CASE WHEN g % 500 = 0 THEN 'refunded'
                    ELSE (ARRAY{list(STATUSES)!r})[1 + g % 5] END,
               'r_' || (g % 100), (g % 1000) + 0.5,
               CASE WHEN g % 100 = 0 THEN 'C' || (g % 5000) END,
               timestamptz '2024-01-01' + g * interval '50 s',
               CASE WHEN g % 1000 <> 0 THEN timestamptz '2024-01-02' + g * interval '50 s' END
        FROM generate_series(1::bigint, {ORDERS}) AS g""",
    f"""INSERT INTO order_items
        SELECT g, 1 + (g * 104729) % {ORDERS}, 1 + (g * 15485863) % {PRODUCTS}, 1 + g % 5,
               1 + g % 300
        FROM generate_series(1::bigint, {ITEMS}) AS g""",
    "VACUUM ANALYZE customers, products, orders, order_items",
]


# Parameter makers: the name in a shape's tuple says which value each %s gets.
def param_makers(rng: random.Random) -> dict[str, Callable[[], object]]:
    def day() -> str:
        return f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 28):02d}"

    return {
        "customer": lambda: rng.randrange(1, CUSTOMERS),
        "order": lambda: rng.randrange(1, ORDERS),
        "product": lambda: rng.randrange(1, PRODUCTS),
        "email": lambda: f"c{rng.randrange(1, CUSTOMERS)}@example.com",
        "email_upper": lambda: f"C{rng.randrange(1, CUSTOMERS)}@EXAMPLE.COM",
        "email_prefix": lambda: f"c{rng.randrange(1, CUSTOMERS)}@%",
        "referral": lambda: f"R{rng.randrange(1, CUSTOMERS // 50) * 50}",
        "coupon": lambda: f"C{rng.randrange(5000)}",
        "sku": lambda: f"SKU-{rng.randrange(1, PRODUCTS)}",
        "sku_lower": lambda: f"sku-{rng.randrange(1, PRODUCTS)}",
        "brand": lambda: f"brand_{rng.randrange(1000)}",
        "name_prefix": lambda: f"Product {rng.randrange(1, PRODUCTS)} %",
        "batch": lambda: f'{{"batch": {rng.randrange(5000)}}}',
        "tag": lambda: f"t{rng.randrange(300)}",
        "vip": lambda: '{"vip": true}',
        "country": lambda: "VN",
        "segment": lambda: f"seg_{rng.randrange(40)}",
        "region": lambda: f"r_{rng.randrange(100)}",
        "status": lambda: "paid",
        "day": day,
        "three": lambda: 3,
        "customers": lambda: [rng.randrange(1, CUSTOMERS) for _ in range(5)],
        "orders": lambda: [rng.randrange(1, ORDERS) for _ in range(5)],
        "category": lambda: f"cat_{rng.randrange(200)}",
    }


HOUR = "%s::timestamptz AND created_at < %s::timestamptz + interval '1 hour'"
DAY = "%s::timestamptz AND created_at < %s::timestamptz + interval '1 day'"


def shapes() -> list[tuple[str, tuple[str, ...]]]:
    """100 distinct query shapes (text, parameter makers)."""
    result: list[tuple[str, tuple[str, ...]]] = []
    # Lookups on one column, four select lists each.
    for select in ("*", "id, created_at", "count(*)", "max(id)"):
        result += [
            (f"SELECT {select} FROM customers WHERE email = %s", ("email",)),
            (f"SELECT {select} FROM customers WHERE referral_code = %s", ("referral",)),
            (f"SELECT {select} FROM orders WHERE customer_id = %s", ("customer",)),
            (f"SELECT {select} FROM orders WHERE coupon_code = %s", ("coupon",)),
        ]
    for select in ("*", "id, price", "count(*)", "max(id)"):
        result += [
            (f"SELECT {select} FROM products WHERE sku = %s", ("sku",)),
            (f"SELECT {select} FROM products WHERE brand = %s", ("brand",)),
        ]
    for select in ("*", "id, quantity", "count(*)", "sum(quantity)"):
        result += [
            (f"SELECT {select} FROM order_items WHERE order_id = %s", ("order",)),
            (f"SELECT {select} FROM order_items WHERE product_id = %s", ("product",)),
        ]
    # Ranges, equality + range, a join on a looked-up key.
    for select in ("o.id, o.total", "count(*)", "sum(o.total)"):
        result += [
            (f"SELECT {select} FROM orders o WHERE created_at >= {HOUR}", ("day", "day")),
            (
                f"SELECT {select} FROM orders o WHERE region = %s AND created_at >= {DAY}",
                ("region", "day", "day"),
            ),
            (
                f"SELECT {select} FROM orders o WHERE customer_id = %s AND created_at > %s::date",
                ("customer", "day"),
            ),
            (
                f"SELECT {select} FROM customers c JOIN orders o ON o.customer_id = c.id "
                "WHERE c.email = %s",
                ("email",),
            ),
        ]
    # Sorts with a limit, a rare NULL, a rare value.
    for columns in ("id, total", "id, status, created_at", "*"):
        result += [
            (
                f"SELECT {columns} FROM orders WHERE customer_id = %s "
                "ORDER BY created_at DESC LIMIT 20",
                ("customer",),
            ),
            (
                f"SELECT {columns} FROM orders WHERE region = %s ORDER BY total DESC LIMIT 10",
                ("region",),
            ),
            (
                f"SELECT {columns} FROM orders WHERE shipped_at IS NULL "
                "ORDER BY created_at LIMIT 50",
                (),
            ),
            (
                f"SELECT {columns} FROM orders WHERE status = 'refunded' AND region = %s",
                ("region",),
            ),
        ]
    # LIKE prefix, lower(), jsonb containment.
    for select in ("*", "id", "count(*)"):
        result += [
            (f"SELECT {select} FROM customers WHERE email LIKE %s", ("email_prefix",)),
            (f"SELECT {select} FROM products WHERE name LIKE %s", ("name_prefix",)),
            (
                f"SELECT {select} FROM customers WHERE lower(email) = lower(%s)",
                ("email_upper",),
            ),
            (f"SELECT {select} FROM products WHERE lower(sku) = %s", ("sku_lower",)),
            (f"SELECT {select} FROM products WHERE attrs @> %s::jsonb", ("batch",)),
        ]
    for columns in ("id, price", "id, name, price", "*"):
        result.append(
            (
                f"SELECT {columns} FROM products WHERE category = %s ORDER BY price DESC LIMIT 10",
                ("category",),
            )
        )
    # Joins, sub-selects, aggregates, writes.
    result += [
        (
            "SELECT id FROM customers WHERE country = %s AND created_at > %s::timestamptz "
            "ORDER BY created_at LIMIT 20",
            ("country", "day"),
        ),
        ("SELECT sum(quantity) FROM order_items WHERE order_id = ANY(%s)", ("orders",)),
        (
            "SELECT count(*) FROM orders WHERE coupon_code IS NOT NULL AND region = %s",
            ("region",),
        ),
        (
            "SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id "
            "WHERE o.coupon_code = %s",
            ("coupon",),
        ),
        (
            "SELECT id, price FROM products WHERE brand = %s AND price > %s ORDER BY price",
            ("brand", "three"),
        ),
        (
            "SELECT id, quantity FROM order_items WHERE product_id = %s ORDER BY id DESC LIMIT 5",
            ("product",),
        ),
        (
            "SELECT p.name, oi.quantity FROM order_items oi "
            "JOIN products p ON p.id = oi.product_id WHERE oi.order_id = %s",
            ("order",),
        ),
        (
            "SELECT o.id, oi.product_id FROM orders o "
            "JOIN order_items oi ON oi.order_id = o.id WHERE o.customer_id = %s",
            ("customer",),
        ),
        (
            "SELECT c.country, count(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
            "WHERE o.created_at >= %s::timestamptz "
            "AND o.created_at < %s::timestamptz + interval '2 hours' GROUP BY c.country",
            ("day", "day"),
        ),
        (
            "SELECT status, count(*) FROM orders WHERE customer_id = %s GROUP BY status",
            ("customer",),
        ),
        (
            "SELECT region, sum(total) FROM orders WHERE created_at >= %s::timestamptz "
            "AND created_at < %s::timestamptz + interval '3 hours' GROUP BY region",
            ("day", "day"),
        ),
        (
            "SELECT product_id, sum(quantity) FROM order_items WHERE order_id = %s "
            "GROUP BY product_id",
            ("order",),
        ),
        (
            "SELECT c.email FROM customers c WHERE EXISTS "
            "(SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.coupon_code = %s)",
            ("coupon",),
        ),
        (
            "SELECT c.id, (SELECT max(o.created_at) FROM orders o WHERE o.customer_id = c.id) "
            "FROM customers c WHERE c.email = %s",
            ("email",),
        ),
        (
            "SELECT p.category, count(*) FROM order_items oi "
            "JOIN products p ON p.id = oi.product_id "
            "WHERE oi.order_id IN (SELECT id FROM orders WHERE customer_id = %s) "
            "GROUP BY p.category",
            ("customer",),
        ),
        (
            "WITH recent AS (SELECT id FROM orders WHERE customer_id = %s "
            "ORDER BY created_at DESC LIMIT 5) "
            "SELECT count(*) FROM order_items WHERE order_id IN (SELECT id FROM recent)",
            ("customer",),
        ),
        ("SELECT id FROM products WHERE tags @> ARRAY[%s]::text[]", ("tag",)),
        (
            "SELECT count(*) FROM customers WHERE prefs @> %s::jsonb AND country = %s",
            ("vip", "country"),
        ),
        (
            "SELECT id, name FROM customers WHERE segment = %s AND country = %s "
            "ORDER BY created_at DESC LIMIT 25",
            ("segment", "country"),
        ),
        (
            "SELECT id FROM order_items WHERE product_id = %s AND quantity > %s",
            ("product", "three"),
        ),
        (
            "SELECT id, total FROM orders WHERE status = %s AND region = %s "
            "AND created_at > %s::timestamptz ORDER BY created_at LIMIT 30",
            ("status", "region", "day"),
        ),
        ("SELECT count(*) FROM orders WHERE customer_id = ANY(%s)", ("customers",)),
        ("SELECT id FROM orders WHERE customer_id = %s OFFSET 0 LIMIT 10", ("customer",)),
        (
            "UPDATE orders SET coupon_code = coupon_code "
            "WHERE customer_id = %s AND coupon_code IS NOT NULL",
            ("customer",),
        ),
        ("DELETE FROM order_items WHERE order_id = %s AND quantity > 100", ("order",)),
        (
            "SELECT id, email FROM customers WHERE created_at >= %s::timestamptz "
            "AND created_at < %s::timestamptz + interval '1 hour' ORDER BY created_at",
            ("day", "day"),
        ),
    ]
    return result


def build(conn) -> float:
    started = time.perf_counter()
    for statement in SCHEMA:
        conn.execute(statement)
    return time.perf_counter() - started


def run_workload(conn, workload, makers) -> float:
    started = time.perf_counter()
    for sql_text, names in workload:
        for _ in range(RUNS):
            values = [_typed(makers[name]()) for name in names]
            cursor = conn.execute(sql_text, values)
            if cursor.description:
                cursor.fetchall()
    return time.perf_counter() - started


def _typed(value: object) -> object:
    # psycopg sends small ints as int2 and larger as int4/int8, and pg_stat_statements
    # counts each parameter type as a query of its own: one type per shape.
    if isinstance(value, int):
        return Int8(value)
    if isinstance(value, list):
        return [Int8(item) for item in value]
    return value


def builds_alone(conn, ddls: list[str]) -> float:
    """Seconds to build each index once, in a transaction rolled back (verification's floor)."""
    total = 0.0
    for ddl in ddls:
        plain = ddl.replace("CREATE INDEX CONCURRENTLY IF NOT EXISTS", "CREATE INDEX", 1)
        with conn.transaction(force_rollback=True):
            started = time.perf_counter()
            conn.execute(plain)
            total += time.perf_counter() - started
    return total


def main() -> None:
    rng = random.Random(7)
    with bench_database("bench_audit") as url:
        import psycopg

        from dbarchitect.agent import run_audit
        from dbarchitect.models import AuditRun
        from dbarchitect.targets import target_sync
        from optimizations.models import OptimizationLog

        target_sync()
        workload = shapes()
        makers = param_makers(rng)
        if len(workload) != 100:
            raise SystemExit(f"expected 100 query shapes, have {len(workload)}")
        with psycopg.connect(url, autocommit=True) as conn:
            log("building the data set...")
            build_s = build(conn)
            conn.execute(
                "SELECT pg_stat_statements_reset(0, "
                "(SELECT oid FROM pg_database WHERE datname = current_database()), 0)"
            )
            log(f"built in {build_s:.1f}s; running {len(workload)} shapes x {RUNS}...")
            workload_s = run_workload(conn, workload, makers)
            log(f"workload ran in {workload_s:.1f}s; auditing...")
        started = time.perf_counter()
        audit = run_audit(target="default", verify=True)
        audit_s = time.perf_counter() - started
        if audit.status != AuditRun.Status.SUCCEEDED:
            raise SystemExit(f"audit failed: {audit.error}")
        report = audit.report
        indexes = [r for r in report["recommendations"] if r["kind"] == "index"]
        measured = [r for r in indexes if r["measured_ms_after"] is not None]
        with psycopg.connect(url, autocommit=True) as conn:
            log(f"building the {len(indexes)} recommended indexes alone...")
            builds_s = builds_alone(conn, [r["ddl"] for r in indexes])
        phases = audit.phase_seconds
        verify_s = phases.get("verify", 0.0)
        speedups = sorted(
            r["measured_ms_before"] / r["measured_ms_after"]
            for r in measured
            if r["measured_ms_after"]
        )
        emit(
            {
                "rows": CUSTOMERS + PRODUCTS + ORDERS + ITEMS,
                "query_shapes": len(workload),
                "build_data_s": build_s,
                "workload_s": workload_s,
                "queries_collected": audit.queries_collected,
                "queries_analyzed": audit.queries_analyzed,
                "queries_skipped": len(report["skipped"]),
                "index_recommendations": len(indexes),
                "indexes_measured": len(measured),
                "median_measured_speedup": speedups[len(speedups) // 2] if speedups else None,
                "recommendations_recorded": OptimizationLog.objects.filter(audit=audit).count(),
                **{f"phase_{name}_s": float(secs) for name, secs in phases.items()},
                "audit_total_s": audit_s,
                "audit_100_queries_s": float(phases["collect"] + phases["advise"]),
                "builds_alone_s": builds_s,
                "audit_verify_ratio_to_builds": verify_s / builds_s if builds_s else None,
                "goal_audit_100_queries_s": 10.0,
                "goal_verify_ratio": 1.5,
            }
        )
        for snapshot in audit.snapshots.filter(is_slow=False):
            log(
                f"under the thresholds: {snapshot.mean_time_ms:.2f} ms x {snapshot.calls}: "
                f"{snapshot.query[:90]}"
            )
        if report["skipped"]:
            for skipped in report["skipped"]:
                log(f"not costed: {skipped['queryid']}: {skipped['reason']}")


if __name__ == "__main__":
    main()
