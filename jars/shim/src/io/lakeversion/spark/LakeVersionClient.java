package io.lakeversion.spark;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The shim's only way to change anything: HTTP calls to the server's {@code /api/v1}.
 *
 * <p>Store logic (ref rules, merges, rollbacks) lives in the server; this class just moves
 * JSON and turns error bodies into {@link LakeVersionException}s with the server's code.
 */
public final class LakeVersionClient {
  static final ObjectMapper JSON = new ObjectMapper();

  static {
    // header values must be ASCII; \\uXXXX keeps non-ASCII app names intact
    JSON.configure(JsonGenerator.Feature.ESCAPE_NON_ASCII, true);
  }

  private final String apiBase;
  private final Map<String, String> headers;
  private final HttpClient http;
  private final Duration timeout;

  public LakeVersionClient(String serverUrl, Map<String, String> headers, Duration timeout) {
    this.apiBase = serverUrl.replaceAll("/+$", "") + "/api/v1";
    this.headers = new LinkedHashMap<>(headers);
    this.timeout = timeout;
    // HTTP/1.1: the default (HTTP/2) sends an h2c Upgrade on every plain-HTTP request,
    // which the server declines with a warning each time
    this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(10)).build();
  }

  public static ObjectNode object() {
    return JSON.createObjectNode();
  }

  /** GET {@code path} with query parameters (null values are left out). */
  public JsonNode get(String path, Map<String, ?> query) {
    StringBuilder url = new StringBuilder(apiBase).append(path);
    char sep = '?';
    for (Map.Entry<String, ?> e : query.entrySet()) {
      if (e.getValue() == null) {
        continue;
      }
      url.append(sep).append(enc(e.getKey())).append('=').append(enc(e.getValue().toString()));
      sep = '&';
    }
    return send(request(url.toString()).GET().build());
  }

  /** POST a JSON body to {@code path}. */
  public JsonNode post(String path, ObjectNode body) {
    String text;
    try {
      text = JSON.writeValueAsString(body);
    } catch (IOException e) {
      throw new LakeVersionException("INVALID_INPUT", "cannot encode request: " + e, null, e);
    }
    return send(request(apiBase + path)
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(text, StandardCharsets.UTF_8))
        .build());
  }

  private HttpRequest.Builder request(String url) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(timeout)
        .header("Accept", "application/json");
    headers.forEach(b::header);
    return b;
  }

  private JsonNode send(HttpRequest req) {
    HttpResponse<String> resp;
    try {
      resp = http.send(req, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    } catch (IOException e) {
      boolean write = "POST".equals(req.method());
      throw new LakeVersionException(
          write ? "COMMIT_OUTCOME_UNKNOWN" : "SERVER_ERROR",
          "cannot reach the lakeversion server at " + req.uri().getAuthority() + ": " + e
              + (write ? " (the change may or may not have been applied; check the log)" : ""),
          null, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new LakeVersionException("COMMIT_OUTCOME_UNKNOWN", "interrupted", null, e);
    }
    JsonNode body;
    try {
      body = resp.body() == null || resp.body().isEmpty()
          ? JSON.createObjectNode() : JSON.readTree(resp.body());
    } catch (IOException e) {
      throw new LakeVersionException("SERVER_ERROR", "server answered " + resp.statusCode()
          + " with something that is not JSON: " + abbreviate(resp.body()), null, e);
    }
    if (resp.statusCode() / 100 == 2) {
      return body;
    }
    JsonNode error = body.path("error");
    String code = error.path("code").isTextual() ? error.path("code").asText() : "SERVER_ERROR";
    String message = error.path("message").asText("HTTP " + resp.statusCode() + " from "
        + req.uri().getPath() + ": " + abbreviate(resp.body()));
    throw new LakeVersionException(code, message, error.toString(), null);
  }

  private static String abbreviate(String s) {
    return s == null ? "" : s.length() > 300 ? s.substring(0, 300) + "..." : s;
  }

  private static String enc(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }

  /** JSON text of a string map, ASCII-only so it can travel in an HTTP header. */
  public static String headerJson(Map<String, String> values) {
    try {
      return JSON.writeValueAsString(values);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
