package io.lakeversion.spark;

import java.io.Serializable;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.parser.ParserInterface;
import scala.runtime.AbstractFunction1;
import scala.runtime.AbstractFunction2;
import scala.runtime.BoxedUnit;

/**
 * {@code spark.sql.extensions=...IcebergSparkSessionExtensions,io.lakeversion.spark.
 * LakeVersionSparkSessionExtensions}: listed after Iceberg's so our parser wraps Iceberg's
 * and can hand branch SQL to it as CALL statements.
 */
public final class LakeVersionSparkSessionExtensions
    extends AbstractFunction1<SparkSessionExtensions, BoxedUnit> implements Serializable {
  private static final long serialVersionUID = 1L;

  @Override
  public BoxedUnit apply(SparkSessionExtensions extensions) {
    extensions.injectParser(new ParserBuilder());
    return BoxedUnit.UNIT;
  }

  private static final class ParserBuilder
      extends AbstractFunction2<SparkSession, ParserInterface, ParserInterface>
      implements Serializable {
    private static final long serialVersionUID = 1L;

    @Override
    public ParserInterface apply(SparkSession session, ParserInterface delegate) {
      return new LakeVersionParser(session, delegate);
    }
  }
}
