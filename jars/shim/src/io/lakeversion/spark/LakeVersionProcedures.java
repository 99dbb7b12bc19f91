package io.lakeversion.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.connector.iceberg.catalog.Procedure;
import org.apache.spark.sql.connector.iceberg.catalog.ProcedureParameter;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * The procedures behind branch SQL ({@code CALL lv.lakeversion.<name>(...)}).
 *
 * <p>Each one is a thin translation: arguments to an {@code /api/v1} request, the answer to
 * rows. Every mutating call refreshes the catalog so no cached table outlives the change.
 */
final class LakeVersionProcedures {
  private LakeVersionProcedures() {}

  private static final DataType S = DataTypes.StringType;
  private static final DataType B = DataTypes.BooleanType;

  static final StructType REF_ROWS = schema("name", S, "type", S, "head", S);
  static final StructType DROP_ROWS = schema("name", S, "type", S, "dropped", B);
  static final StructType USE_ROWS = schema("ref", S, "commit_id", S, "writable", B);
  static final StructType LOG_ROWS = schema("commit_id", S, "parents", S, "author", S,
      "timestamp", S, "message", S, "properties", S);
  static final StructType DIFF_ROWS = schema("table", S, "kind", S, "from_metadata", S,
      "to_metadata", S);
  static final StructType MERGE_ROWS = schema("table", S, "action", S, "conflict_type", S,
      "message", S, "commit_id", S, "statistics", S);
  static final StructType ROLLBACK_ROWS = schema("table", S, "commit_id", S, "message", S);
  static final StructType BRANCH_ROWS = schema("name", S, "type", S, "head", S,
      "protected", B);
  static final StructType PROTECT_ROWS = schema("name", S, "protected", B, "changed", B);
  static final StructType CHECK_ROWS = schema("branch", S, "name", S, "kind", S, "spec", S,
      "tables", S, "timeout_s", DataTypes.DoubleType);
  static final StructType DROP_CHECK_ROWS = schema("branch", S, "name", S, "dropped", B);
  static final StructType CHECK_RUN_ROWS = schema("timestamp", S, "branch", S, "source", S,
      "attempt", S, "preview", S, "kind", S, "check", S, "status", S,
      "violations", DataTypes.LongType, "duration_ms", DataTypes.LongType, "message", S,
      "samples", S);

  /** The procedure called {@code name}, bound to {@code catalog}, or null. */
  static Procedure load(String name, LakeVersionCatalog catalog) {
    switch (name) {
      case "create_ref":
        return new Proc(catalog, REF_ROWS, "create a branch or tag",
            req("name"), req("type"), opt("from_ref"), opt("if_not_exists", B)) {
          @Override
          List<Object[]> run(Args a) {
            ObjectNode body = LakeVersionClient.object()
                .put("name", a.str("name")).put("type", a.str("type"))
                .put("from", a.str("from_ref", catalog.currentRef()))
                .put("if_not_exists", a.bool("if_not_exists"));
            return List.<Object[]>of(refRow(catalog.client().post("/refs", body)));
          }
        };
      case "drop_ref":
        return new Proc(catalog, DROP_ROWS, "delete a branch or tag",
            req("name"), req("type"), opt("if_exists", B), opt("force", B)) {
          @Override
          List<Object[]> run(Args a) {
            // the default branch: the server's refusal says why, before the session's
            if (a.str("name").equals(catalog.currentRef())
                && !a.str("name").equals(LakeVersionCatalog.DEFAULT_REF)
                && a.str("type").equals("BRANCH")) {
              throw LakeVersionException.invalid("cannot drop branch '" + a.str("name")
                  + "': this session is using it (USE BRANCH another one first)");
            }
            ObjectNode body = LakeVersionClient.object()
                .put("name", a.str("name")).put("type", a.str("type"))
                .put("if_exists", a.bool("if_exists")).put("force", a.bool("force"));
            JsonNode r = catalog.client().post("/refs/delete", body);
            return List.<Object[]>of(new Object[] {
              a.str("name"), a.str("type"), r.path("deleted").asBoolean()});
          }
        };
      case "list_refs":
        return new Proc(catalog, BRANCH_ROWS, "list branches or tags", opt("type")) {
          @Override
          List<Object[]> run(Args a) {
            Map<String, Object> q = new LinkedHashMap<>();
            q.put("type", a.str("type", null));
            java.util.Set<String> protectedNames = new java.util.HashSet<>();
            catalog.client().get("/protected-branches", Map.of()).path("branches")
                .forEach(n -> protectedNames.add(n.asText()));
            List<Object[]> rows = new ArrayList<>();
            for (JsonNode ref : catalog.client().get("/refs", q).path("refs")) {
              boolean branch = "BRANCH".equals(text(ref, "type"));
              rows.add(new Object[] {text(ref, "name"), text(ref, "type"), text(ref, "head"),
                  branch ? (Object) protectedNames.contains(text(ref, "name")) : null});
            }
            return rows;
          }
        };
      case "set_protected":
        return new Proc(catalog, PROTECT_ROWS, "protect or unprotect a branch",
            req("name"), opt("protected", B), opt("require_approvals", DataTypes.IntegerType)) {
          @Override
          List<Object[]> run(Args a) {
            boolean on = a.bool("protected");
            ObjectNode body = LakeVersionClient.object().put("name", a.str("name"));
            int required = a.integer("require_approvals", -1);
            if (on && required >= 0) {
              body.put("require_approvals", required);
            }
            JsonNode r = catalog.client().post(
                on ? "/branches/protect" : "/branches/unprotect", body);
            return List.<Object[]>of(new Object[] {a.str("name"), on,
                r.path("changed").asBoolean()});
          }
        };
      case "list_checks":
        return new Proc(catalog, CHECK_ROWS, "checks gating merges into branches",
            opt("branch")) {
          @Override
          List<Object[]> run(Args a) {
            Map<String, Object> q = new LinkedHashMap<>();
            q.put("branch", a.str("branch", null));
            List<Object[]> rows = new ArrayList<>();
            for (JsonNode c : catalog.client().get("/checks", q).path("checks")) {
              rows.add(checkRow(c));
            }
            return rows;
          }
        };
      case "add_check":
        // the server validates it (parses, reads only preview/target/source, runs once on
        // the branch) and checks the grant before storing anything, as for the CLI
        return new Proc(catalog, CHECK_ROWS, "attach a SQL check to merges into a branch",
            req("name"), req("branch"), req("sql"), opt("timeout_s", DataTypes.DoubleType),
            opt("tables"), opt("allow_missing", B)) {
          @Override
          List<Object[]> run(Args a) {
            ObjectNode body = LakeVersionClient.object()
                .put("branch", a.str("branch")).put("name", a.str("name"))
                .put("kind", "sql").put("spec", a.str("sql"))
                .put("allow_missing", a.bool("allow_missing"));
            if (a.present("timeout_s")) {
              body.put("timeout_s", a.dbl("timeout_s"));
            }
            ArrayNode tables = body.putArray("tables");
            for (String t : a.str("tables", "").split(",")) {
              if (!t.isEmpty()) {
                tables.add(t);
              }
            }
            return List.<Object[]>of(checkRow(catalog.client().post("/checks", body)));
          }
        };
      case "drop_check":
        return new Proc(catalog, DROP_CHECK_ROWS, "detach a check from a branch",
            req("name"), req("branch"), opt("if_exists", B)) {
          @Override
          List<Object[]> run(Args a) {
            ObjectNode body = LakeVersionClient.object()
                .put("branch", a.str("branch")).put("name", a.str("name"));
            boolean dropped = catalog.client().post("/checks/delete", body)
                .path("deleted").asBoolean();
            if (!dropped && !a.bool("if_exists")) {
              throw new LakeVersionException("NOT_FOUND", "branch '" + a.str("branch")
                  + "' has no check named '" + a.str("name") + "'");
            }
            return List.<Object[]>of(new Object[] {a.str("branch"), a.str("name"), dropped});
          }
        };
      case "check_runs":
        return new Proc(catalog, CHECK_RUN_ROWS, "the latest check runs, newest first",
            opt("branch"), opt("max_runs", DataTypes.IntegerType)) {
          @Override
          List<Object[]> run(Args a) {
            Map<String, Object> q = new LinkedHashMap<>();
            q.put("branch", a.str("branch", null));
            q.put("limit", a.integer("max_runs", 50));
            List<Object[]> rows = new ArrayList<>();
            for (JsonNode r : catalog.client().get("/check-runs", q).path("runs")) {
              JsonNode v = r.path("violations");
              rows.add(new Object[] {text(r, "timestamp"), text(r, "branch"),
                  text(r, "source"), text(r, "attempt"), text(r, "preview"), text(r, "kind"),
                  text(r, "name"), text(r, "status"), v.isNumber() ? (Object) v.asLong() : null,
                  r.path("duration_ms").asLong(), text(r, "message"),
                  r.path("samples").toString()});
            }
            return rows;
          }
        };
      case "use_ref":
        return new Proc(catalog, USE_ROWS, "point unqualified names at a ref", req("name")) {
          @Override
          List<Object[]> run(Args a) {
            JsonNode r = catalog.client().get("/resolve", Map.of("ref", a.str("name")));
            catalog.useRef(a.str("name"));
            return List.<Object[]>of(new Object[] {
              a.str("name"), text(r, "commit_id"), r.path("writable").asBoolean()});
          }
        };
      case "log":
        return new Proc(catalog, LOG_ROWS, "commits of a ref, newest first",
            opt("ref"), opt("max_commits", DataTypes.IntegerType)) {
          @Override
          List<Object[]> run(Args a) {
            int limit = a.integer("max_commits", 50);
            if (limit <= 0) {
              throw LakeVersionException.invalid("LIMIT must be positive, not " + limit);
            }
            List<Object[]> rows = new ArrayList<>();
            String token = null;
            do {
              Map<String, Object> q = new LinkedHashMap<>();
              q.put("ref", a.str("ref", catalog.currentRef()));
              q.put("limit", Math.min(limit - rows.size(), 500));
              q.put("page_token", token);
              JsonNode page = catalog.client().get("/log", q);
              for (JsonNode c : page.path("commits")) {
                if (rows.size() >= limit) {
                  break;
                }
                List<String> parents = new ArrayList<>();
                c.path("parents").forEach(p -> parents.add(p.asText()));
                rows.add(new Object[] {text(c, "id"), String.join(",", parents),
                    text(c, "author"), text(c, "timestamp"), text(c, "message"),
                    c.path("properties").toString()});
              }
              token = page.path("next_page_token").isTextual()
                  ? page.path("next_page_token").asText() : null;
            } while (token != null && rows.size() < limit);
            return rows;
          }
        };
      case "diff":
        return new Proc(catalog, DIFF_ROWS, "what changed between two refs",
            req("from_ref"), req("to_ref")) {
          @Override
          List<Object[]> run(Args a) {
            Map<String, Object> q = new LinkedHashMap<>();
            q.put("from", a.str("from_ref"));
            q.put("to", a.str("to_ref"));
            List<Object[]> rows = new ArrayList<>();
            for (JsonNode d : catalog.client().get("/diff", q).path("diffs")) {
              rows.add(new Object[] {text(d, "key"), text(d, "kind"),
                  text(d.path("from"), "metadata_location"),
                  text(d.path("to"), "metadata_location")});
            }
            return rows;
          }
        };
      case "merge":
        return new Proc(catalog, MERGE_ROWS, "merge one ref into a branch", req("source"),
            req("target"), opt("dry_run", B), opt("strategy"), opt("fast_forward", B),
            opt("row_conflicts")) {
          @Override
          List<Object[]> run(Args a) {
            ObjectNode body = LakeVersionClient.object()
                .put("source", a.str("source")).put("target", a.str("target"))
                .put("dry_run", a.bool("dry_run"))
                .put("fast_forward", a.bool("fast_forward", true));
            String strategy = a.str("strategy", null);
            if (strategy != null) { // none: the server's default
              body.put("strategy", catalog.mergeStrategy(strategy));
            }
            String rowConflicts = a.str("row_conflicts", null);
            if (rowConflicts != null) {
              body.put("row_conflicts", rowConflicts);
            }
            boolean dryRun = a.bool("dry_run");
            return mergeRows(catalog, () -> {
              try {
                return catalog.client().post("/merge", body);
              } catch (LakeVersionException e) {
                // past the server's row limit, the row merges run in this session
                org.apache.spark.sql.SparkSession spark =
                    org.apache.spark.sql.SparkSession.active();
                if (dryRun || !RowEngine.inSession(spark) || !RowEngine.overLimit(e)) {
                  throw e;
                }
                return parse(RowEngine.merge(spark, catalog.name(), body.toString()));
              }
            }, dryRun, "merge of " + a.str("source") + " into " + a.str("target"));
          }
        };
      case "revert_commit":
        return new Proc(catalog, MERGE_ROWS, "undo one commit with a new commit",
            req("commit_id"), opt("branch"), opt("dry_run", B)) {
          @Override
          List<Object[]> run(Args a) {
            ObjectNode body = LakeVersionClient.object()
                .put("commit", a.str("commit_id"))
                .put("branch", a.str("branch", catalog.currentRef()))
                .put("dry_run", a.bool("dry_run"));
            return mergeRows(catalog, () -> catalog.client().post("/revert", body),
                a.bool("dry_run"), "revert of " + a.str("commit_id"));
          }
        };
      case "rollback_table":
        return new Proc(catalog, ROLLBACK_ROWS, "put one table back as it was at a ref",
            req("table"), req("to_ref"), opt("branch")) {
          @Override
          List<Object[]> run(Args a) {
            ObjectNode body = LakeVersionClient.object()
                .put("branch", a.str("branch", catalog.currentRef()))
                .put("table", a.str("table"))
                .put("to", a.str("to_ref"));
            JsonNode c;
            try {
              c = catalog.client().post("/rollback", body);
            } finally {
              catalog.refresh();
            }
            return List.<Object[]>of(new Object[] {a.str("table"), text(c, "id"),
                text(c, "message")});
          }
        };
      default:
        return null;
    }
  }

  private interface Call {
    JsonNode call();
  }

  /** Rows of a MergeResult; a refused real merge is an error listing its conflicts. */
  private static List<Object[]> mergeRows(LakeVersionCatalog catalog, Call call,
      boolean dryRun, String what) {
    JsonNode result;
    try {
      result = call.call();
    } catch (LakeVersionException e) {
      JsonNode payload = parse(e.payload());
      if (payload != null && payload.has("reports")) {
        // a merge gate refused it: list every check's report (the payload keeps them typed)
        StringBuilder msg = new StringBuilder(text(payload, "message"));
        for (JsonNode r : payload.path("reports")) {
          msg.append("\n  ").append(text(r, "status")).append(' ').append(text(r, "name"))
              .append(": violations=").append(text(r, "violations")).append(", ")
              .append(text(r, "message"));
          for (JsonNode sample : r.path("samples")) {
            msg.append("\n      ").append(sample.toString());
          }
        }
        throw new LakeVersionException(e.code(), msg.toString(), e.payload(), null);
      } else if (payload != null && payload.has("result") && dryRun) {
        result = payload.path("result");
      } else if (payload != null && payload.has("conflicts")
          && payload.path("conflicts").size() > 0) {
        StringBuilder msg = new StringBuilder(what).append(" has conflicts, nothing merged:");
        for (JsonNode c : payload.path("conflicts")) {
          msg.append("\n  ").append(text(c, "key")).append(": ").append(text(c, "type"))
              .append(" - ").append(text(c, "message"));
        }
        throw new LakeVersionException(e.code(), msg.toString(), e.payload(), null);
      } else {
        throw e;
      }
    } finally {
      if (!dryRun) {
        catalog.refresh();
      }
    }
    String head = text(result, "new_head");
    String noFf = text(result, "no_ff_reason");  // a protected target: a merge commit
    List<Object[]> rows = new ArrayList<>();
    for (JsonNode d : result.path("details")) {
      JsonNode conflict = d.path("conflict");
      JsonNode stats = d.path("statistics");  // content merges: files and rows per side
      rows.add(new Object[] {text(d, "key"), text(d, "action"), text(conflict, "type"),
          conflict.isObject() ? text(conflict, "message") : noFf, head,
          stats.isObject() && stats.size() > 0 ? stats.toString() : null});
    }
    if (rows.isEmpty()) {
      rows.add(new Object[] {null, dryRun ? "NOTHING_TO_MERGE" : "UP_TO_DATE", null,
          "no table differs", head, null});
    }
    return rows;
  }

  private static JsonNode parse(String json) {
    if (json == null) {
      return null;
    }
    try {
      return LakeVersionClient.JSON.readTree(json);
    } catch (java.io.IOException e) {
      return null;
    }
  }

  private static Object[] checkRow(JsonNode c) {
    return new Object[] {text(c, "branch"), text(c, "name"), text(c, "kind"),
        text(c, "spec"), c.path("tables").toString(), c.path("timeout_s").asDouble()};
  }

  private static Object[] refRow(JsonNode ref) {
    return new Object[] {text(ref, "name"), text(ref, "type"), text(ref, "head")};
  }

  private static String text(JsonNode node, String field) {
    JsonNode v = node == null ? null : node.get(field);
    return v == null || v.isNull() ? null : v.isTextual() ? v.asText() : v.toString();
  }

  private static StructType schema(Object... nameTypes) {
    StructField[] fields = new StructField[nameTypes.length / 2];
    for (int i = 0; i < fields.length; i++) {
      fields[i] = new StructField((String) nameTypes[2 * i], (DataType) nameTypes[2 * i + 1],
          true, Metadata.empty());
    }
    return new StructType(fields);
  }

  private static ProcedureParameter req(String name) {
    return ProcedureParameter.required(name, S);
  }

  private static ProcedureParameter opt(String name) {
    return ProcedureParameter.optional(name, S);
  }

  private static ProcedureParameter opt(String name, DataType type) {
    return ProcedureParameter.optional(name, type);
  }

  /** Procedure arguments by name, as Iceberg's CALL hands them over (one InternalRow). */
  static final class Args {
    private final ProcedureParameter[] params;
    private final InternalRow row;

    Args(ProcedureParameter[] params, InternalRow row) {
      this.params = params;
      this.row = row;
    }

    private int index(String name) {
      for (int i = 0; i < params.length; i++) {
        if (params[i].name().equals(name)) {
          return i;
        }
      }
      throw new IllegalArgumentException("no parameter " + name);
    }

    String str(String name) {
      String v = str(name, null);
      if (v == null || v.isEmpty()) {
        throw LakeVersionException.invalid(name + " must not be empty");
      }
      return v;
    }

    String str(String name, String dflt) {
      int i = index(name);
      return row.isNullAt(i) ? dflt : row.getUTF8String(i).toString();
    }

    boolean bool(String name) {
      return bool(name, false);
    }

    boolean bool(String name, boolean dflt) {
      int i = index(name);
      return row.isNullAt(i) ? dflt : row.getBoolean(i);
    }

    boolean present(String name) {
      return !row.isNullAt(index(name));
    }

    double dbl(String name) {
      return row.getDouble(index(name));
    }

    int integer(String name, int dflt) {
      int i = index(name);
      return row.isNullAt(i) ? dflt : row.getInt(i);
    }
  }

  /** Common plumbing: parameters, output schema, rows to InternalRows. */
  abstract static class Proc implements Procedure {
    final LakeVersionCatalog catalog;
    private final StructType output;
    private final String description;
    private final ProcedureParameter[] params;

    Proc(LakeVersionCatalog catalog, StructType output, String description,
        ProcedureParameter... params) {
      this.catalog = catalog;
      this.output = output;
      this.description = description;
      this.params = params;
    }

    abstract List<Object[]> run(Args args);

    @Override
    public ProcedureParameter[] parameters() {
      return params;
    }

    @Override
    public StructType outputType() {
      return output;
    }

    @Override
    public String description() {
      return description;
    }

    @Override
    public InternalRow[] call(InternalRow args) {
      List<Object[]> rows = run(new Args(params, args));
      InternalRow[] out = new InternalRow[rows.size()];
      Iterator<Object[]> it = rows.iterator();
      for (int i = 0; i < out.length; i++) {
        Object[] values = it.next();
        Object[] converted = new Object[values.length];
        for (int j = 0; j < values.length; j++) {
          converted[j] = values[j] instanceof String
              ? UTF8String.fromString((String) values[j]) : values[j];
        }
        out[i] = new GenericInternalRow(converted);
      }
      return out;
    }
  }
}
