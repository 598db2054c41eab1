"""Which built-in functions an asked query may call, and why the others are refused.

An allow-list, not a deny-list: a function that is not named here is refused, so a new
server version or an installed extension cannot add a dangerous one unnoticed. Every
name here is a pure or read-only built-in of pg_catalog. Functions that turn a tiny input
into a huge output (repeat, lpad, rpad, format with a width) are left out: the statement
timeout bounds time, not memory.
"""

AGGREGATES = {
    "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or",
    "every", "bit_and", "bit_or", "stddev", "stddev_pop", "stddev_samp", "variance",
    "var_pop", "var_samp", "percentile_cont", "percentile_disc", "mode", "json_agg",
    "jsonb_agg", "json_object_agg", "jsonb_object_agg", "corr", "covar_pop", "covar_samp",
    "regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope",
    "regr_sxx", "regr_sxy", "regr_syy", "grouping",
}  # fmt: skip
WINDOW = {
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
}  # fmt: skip
MATH = {
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "power",
    "pow", "exp", "ln", "log", "log10", "mod", "div", "pi", "degrees", "radians",
    "width_bucket", "gcd", "lcm", "scale", "random", "numeric", "float8", "int4", "int8",
}  # fmt: skip
TEXT = {
    "length", "char_length", "character_length", "octet_length", "bit_length", "lower",
    "upper", "initcap", "btrim", "ltrim", "rtrim", "substr", "substring", "left", "right",
    "position", "strpos", "replace", "concat", "concat_ws", "split_part",
    "reverse", "md5", "starts_with", "translate", "to_char", "to_number",
    "regexp_replace", "regexp_match", "regexp_matches", "regexp_split_to_array",
    "regexp_like", "regexp_count", "regexp_substr", "quote_ident", "quote_literal",
    "quote_nullable", "ascii", "chr", "encode", "decode", "normalize", "overlay", "trim",
    "sha256", "string_to_array", "array_to_string", "like_escape", "text",
}  # fmt: skip
TIME = {
    "now", "date_trunc", "date_part", "extract", "age", "make_date", "make_time",
    "make_timestamp", "make_timestamptz", "make_interval", "justify_days", "justify_hours",
    "justify_interval", "to_date", "to_timestamp", "clock_timestamp", "statement_timestamp",
    "transaction_timestamp", "timezone", "date_bin", "isfinite", "overlaps", "date",
}  # fmt: skip
JSON = {
    "to_json", "to_jsonb", "row_to_json", "array_to_json", "json_build_object",
    "jsonb_build_object", "json_build_array", "jsonb_build_array", "json_object",
    "jsonb_object", "json_extract_path", "json_extract_path_text", "jsonb_extract_path",
    "jsonb_extract_path_text", "json_array_length", "jsonb_array_length", "json_typeof",
    "jsonb_typeof", "json_each", "jsonb_each", "json_each_text", "jsonb_each_text",
    "json_object_keys", "jsonb_object_keys", "json_array_elements", "jsonb_array_elements",
    "json_array_elements_text", "jsonb_array_elements_text", "jsonb_strip_nulls",
    "json_strip_nulls", "jsonb_pretty", "jsonb_set", "jsonb_insert", "jsonb_path_exists",
    "jsonb_path_match", "jsonb_path_query", "jsonb_path_query_array",
    "jsonb_path_query_first", "jsonb_exists", "json_populate_record",
}  # fmt: skip
ARRAYS_AND_SETS = {
    "array_length", "cardinality", "unnest", "array_position", "array_positions",
    "array_remove", "array_replace", "array_append", "array_prepend", "array_cat",
    "array_lower", "array_upper", "array_ndims", "array_dims", "generate_subscripts",
    "generate_series", "trim_array", "num_nonnulls", "num_nulls",
}  # fmt: skip
RANGES = {
    "lower", "upper", "isempty", "lower_inc", "upper_inc", "lower_inf", "upper_inf",
    "int4range", "int8range", "numrange", "daterange", "tsrange", "tstzrange", "range_merge",
}  # fmt: skip
SEARCH_AND_MISC = {
    "to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery",
    "websearch_to_tsquery", "ts_rank", "ts_rank_cd", "ts_headline", "gen_random_uuid",
    "pg_typeof", "format_type", "pg_size_pretty", "pg_relation_size",
    "pg_total_relation_size", "pg_table_size", "pg_indexes_size", "bool", "host", "family",
    "masklen", "network", "broadcast", "inet_same_family",
}  # fmt: skip

SAFE_FUNCTIONS = frozenset(
    AGGREGATES | WINDOW | MATH | TEXT | TIME | JSON | ARRAYS_AND_SETS | RANGES | SEARCH_AND_MISC
)

# Why the well-known dangerous families are refused, checked by name prefix.
DANGEROUS_PREFIXES = (
    ("pg_sleep", "delays the server (pg_sleep)"),
    ("pg_read", "reads server files"),
    ("pg_ls_", "lists server directories"),
    ("pg_stat_file", "reads server file metadata"),
    ("pg_file", "touches server files"),
    ("lo_", "reads or writes large objects"),
    ("loread", "reads large objects"),
    ("lowrite", "writes large objects"),
    ("dblink", "opens a connection to another database"),
    ("postgres_fdw", "reaches a foreign server"),
    ("pg_advisory", "takes an advisory lock"),
    ("pg_try_advisory", "takes an advisory lock"),
    ("set_config", "changes a server setting"),
    ("current_setting", "reads server settings"),
    ("pg_terminate_backend", "kills a server process"),
    ("pg_cancel_backend", "cancels another session"),
    ("pg_reload_conf", "reloads the server configuration"),
    ("pg_rotate_logfile", "rotates the server log"),
    ("pg_switch_wal", "switches the WAL file"),
    ("pg_create", "creates server objects"),
    ("pg_drop", "drops server objects"),
    ("pg_notify", "sends a notification"),
    ("nextval", "advances a sequence"),
    ("setval", "changes a sequence"),
    ("txid_", "exposes transaction internals"),
    ("pg_export_snapshot", "exports a snapshot"),
    ("query_to_xml", "runs a query given as text"),
    ("table_to_xml", "dumps a table outside the checks"),
    ("cursor_to_xml", "reads a cursor outside the checks"),
    ("database_to_xml", "dumps a database"),
    ("schema_to_xml", "dumps a schema"),
    ("pg_get_", "reads object definitions outside the checks"),
    ("has_", "probes privileges"),
    ("pg_backup", "controls backups"),
    ("pg_promote", "promotes a standby"),
)


def refusal_for_function(qualified: str, name: str) -> str:
    """A reason that says what the function would do, or that it is not allow-listed."""
    for prefix, what in DANGEROUS_PREFIXES:
        if name.startswith(prefix):
            return f"Function {qualified} {what}; it is not allowed."
    return f"Function {qualified} is not on the allow-list of safe built-in functions."
