// A TCP server that writes a greeting on connect (SMTP, FTP, POP3, many game protocols do) and,
// like many real ones, has no 'error' handler on its sockets: a reset kills the process.
// Prints its port on stdout once listening, and "conn N" for each connection.
import net from 'node:net';
let n = 0;
const server = net.createServer((c) => {
  n++;
  process.stdout.write(`conn ${n}\n`);
  c.write('220 greeting server ready\r\n');
});
server.listen(0, process.argv[2] ?? '127.0.0.1', () => process.stdout.write(`port ${server.address().port}\n`));
