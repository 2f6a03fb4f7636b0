// The OpenTelemetry JS logs exporter (OTLP/HTTP, JSON encoding) against Logbook.
// Prints the export results as JSON; the Rust test checks them and what was stored.
const { context, trace } = require('@opentelemetry/api');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { LoggerProvider, SimpleLogRecordProcessor } = require('@opentelemetry/sdk-logs');

async function main() {
  const results = [];
  const exporter = new OTLPLogExporter({
    url: process.env.BASE + '/v1/logs',
    headers: { Authorization: 'Bearer ' + process.env.TOKEN },
  });
  const exportOnce = exporter.export.bind(exporter);
  exporter.export = (logs, done) =>
    exportOnce(logs, (result) => {
      results.push({ code: result.code, error: result.error ? String(result.error) : null });
      done(result);
    });
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({
      'service.name': 'frontend',
      'host.name': 'browser-host',
      'deployment.environment': 'staging',
    }),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  const logger = provider.getLogger('web.checkout', '1.2.3');
  const spanContext = {
    traceId: '5b8efff798038103d269b633813fc60c',
    spanId: 'eee19b7ec3c1b174',
    traceFlags: 1,
  };
  logger.emit({
    severityNumber: SeverityNumber.WARN,
    severityText: 'WARN',
    body: 'cache miss',
    timestamp: new Date(Date.UTC(2024, 4, 1, 10, 40, 0, 500)),
    attributes: { 'cache.key': 'user:42', attempt: 3, big: 9007199254740993n.toString() },
    context: trace.setSpanContext(context.active(), spanContext),
  });
  logger.emit({
    severityNumber: SeverityNumber.FATAL,
    body: { event: 'crash', code: 7 },
  });
  await provider.forceFlush();
  await provider.shutdown();
  console.log(JSON.stringify(results));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
