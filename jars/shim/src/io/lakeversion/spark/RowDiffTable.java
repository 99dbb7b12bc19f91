package io.lakeversion.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.catalog.SupportsRead;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.read.LocalScan;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Decimal;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * {@code SHOW DIFF FROM a TO b FOR TABLE db.t ROWS [LIMIT n]}: the row diff the server computes
 * ({@code GET /api/v1/diff/rows}, page by page), as a read-only table whose columns are the
 * diff's ({@code change} first, then the table's), so Spark can filter, join or save it.
 *
 * <p>Its schema depends on the table, which a CALL procedure cannot have, so the statement
 * parses to a relation {@code <catalog>.lakeversion.diff_rows.`<json arguments>`} that
 * {@link LakeVersionCatalog#loadTable} answers with this table. Values arrive as the REST
 * API's JSON; Arrow types map to Spark's (a type without a mapping arrives as its JSON text).
 */
final class RowDiffTable implements SupportsRead {
  static final String[] NAMESPACE = {BranchSql.NAMESPACE, "diff_rows"};
  /** Rows per request (the server caps a page at 10,000). */
  private static final int PAGE = 10_000;
  private static final Pattern DECIMAL = Pattern.compile("decimal(?:128|256)?\\((\\d+), *(\\d+)\\)");

  private final String name;
  private final StructType schema;
  private final InternalRow[] rows;

  private RowDiffTable(String name, StructType schema, InternalRow[] rows) {
    this.name = name;
    this.schema = schema;
    this.rows = rows;
  }

  static boolean matches(Identifier ident) {
    return Arrays.equals(ident.namespace(), NAMESPACE);
  }

  /** The identifier's name: the statement's arguments as JSON. */
  static String encode(Map<String, Object> args) {
    ObjectNode node = LakeVersionClient.object();
    for (Map.Entry<String, Object> e : args.entrySet()) {
      node.put(e.getKey(), e.getValue().toString());
    }
    return node.toString();
  }

  static RowDiffTable load(LakeVersionCatalog catalog, String encoded) {
    JsonNode args;
    try {
      args = LakeVersionClient.JSON.readTree(encoded);
    } catch (java.io.IOException e) {
      throw LakeVersionException.invalid("not a row diff: " + encoded);
    }
    long limit = args.hasNonNull("limit") ? Long.parseLong(args.get("limit").asText()) : -1;
    Map<String, Object> q = new LinkedHashMap<>();
    q.put("from", args.path("from_ref").asText());
    q.put("to", args.path("to_ref").asText());
    q.put("table", args.path("table").asText());
    StructType schema = null;
    List<InternalRow> rows = new ArrayList<>();
    String token = null;
    do {
      long want = limit < 0 ? PAGE : Math.min(PAGE, limit - rows.size());
      q.put("limit", want);
      q.put("page_token", token);
      JsonNode page = catalog.client().get("/diff/rows", q);
      if (schema == null) {
        schema = schema(page.path("columns"));
      }
      for (JsonNode row : page.path("rows")) {
        rows.add(row(schema, row));
      }
      token = page.path("next_page_token").isTextual()
          ? page.path("next_page_token").asText() : null;
    } while (token != null && (limit < 0 || rows.size() < limit));
    String name = "diff_rows(" + args.path("from_ref").asText() + ".."
        + args.path("to_ref").asText() + ", " + args.path("table").asText() + ")";
    return new RowDiffTable(name, schema, rows.toArray(new InternalRow[0]));
  }

  private static StructType schema(JsonNode columns) {
    List<StructField> fields = new ArrayList<>();
    for (JsonNode c : columns) {
      fields.add(DataTypes.createStructField(c.path("name").asText(),
          sparkType(c.path("type").asText()), true));
    }
    return DataTypes.createStructType(fields);
  }

  /** The Spark type of an Arrow type as pyarrow prints it. */
  static DataType sparkType(String arrow) {
    Matcher decimal = DECIMAL.matcher(arrow);
    if (decimal.matches()) {
      return DataTypes.createDecimalType(Integer.parseInt(decimal.group(1)),
          Integer.parseInt(decimal.group(2)));
    }
    switch (arrow) {
      case "int8": case "int16": case "int32": case "uint8": case "uint16":
        return DataTypes.IntegerType;
      case "int64": case "uint32": case "uint64":
        return DataTypes.LongType;
      case "float": case "halffloat":
        return DataTypes.FloatType;
      case "double":
        return DataTypes.DoubleType;
      case "bool":
        return DataTypes.BooleanType;
      case "date32[day]": case "date64[ms]":
        return DataTypes.DateType;
      default:
        if (arrow.startsWith("timestamp[")) {
          return arrow.contains("tz=") ? DataTypes.TimestampType : DataTypes.TimestampNTZType;
        }
        return DataTypes.StringType;
    }
  }

  private static InternalRow row(StructType schema, JsonNode row) {
    Object[] values = new Object[schema.fields().length];
    for (int i = 0; i < values.length; i++) {
      StructField f = schema.fields()[i];
      values[i] = value(f.dataType(), row.get(f.name()));
    }
    return new GenericInternalRow(values);
  }

  private static Object value(DataType type, JsonNode v) {
    if (v == null || v.isNull()) {
      return null;
    }
    if (type == DataTypes.IntegerType) {
      return v.asInt();
    } else if (type == DataTypes.LongType) {
      return v.asLong();
    } else if (type == DataTypes.DoubleType) {
      return v.isNumber() ? v.asDouble() : Double.parseDouble(v.asText());
    } else if (type == DataTypes.FloatType) {
      return (float) (v.isNumber() ? v.asDouble() : Double.parseDouble(v.asText()));
    } else if (type == DataTypes.BooleanType) {
      return v.asBoolean();
    } else if (type == DataTypes.DateType) {
      return (int) LocalDate.parse(v.asText()).toEpochDay();
    } else if (type == DataTypes.TimestampType) {
      return ChronoUnit.MICROS.between(java.time.Instant.EPOCH,
          OffsetDateTime.parse(v.asText()).toInstant());
    } else if (type == DataTypes.TimestampNTZType) {
      return ChronoUnit.MICROS.between(java.time.Instant.EPOCH,
          LocalDateTime.parse(v.asText()).toInstant(ZoneOffset.UTC));
    } else if (type instanceof DecimalType) {
      DecimalType d = (DecimalType) type;
      return Decimal.apply(new BigDecimal(v.asText()), d.precision(), d.scale());
    }
    return UTF8String.fromString(v.isTextual() ? v.asText() : v.toString());
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  @SuppressWarnings("deprecation")
  public StructType schema() {
    return schema;
  }

  @Override
  public Set<TableCapability> capabilities() {
    return EnumSet.of(TableCapability.BATCH_READ);
  }

  @Override
  public ScanBuilder newScanBuilder(CaseInsensitiveStringMap options) {
    return () -> new LocalScan() {
      @Override
      public InternalRow[] rows() {
        return rows;
      }

      @Override
      public StructType readSchema() {
        return schema;
      }
    };
  }
}
