/**
 * The agent's load concern, in one import: measure (proc-net, cpu), take reports (input,
 * endpoint), combine and publish (tracker).
 */
export { formatIp, isLoopbackAddress, parseIp } from './addr.js';
export { CpuSampler, cpuTimesFromOs, parseProcStat, readCpuTimes, utilizationBetween, type CpuSamplerOptions, type CpuTimes } from './cpu.js';
export { handleLoadRequest, LOAD_BODY_TIMEOUT_MS, LOAD_PATH, MAX_LOAD_BODY_BYTES, type LoadEndpointOptions, type LoadSink } from '../endpoints/load.js';
export { InvalidLoadError, LOAD_FIELDS, MAX_COUNT, parseLoadInput, type LoadField, type LoadInput } from './input.js';
export {
  countEstablished,
  countEstablishedIn,
  decodeProcAddress,
  parseProcNetTcp,
  TCP_STATE,
  type CountFilter,
  type CountOptions,
  type Endianness,
  type ParseOptions,
  type TcpSocketEntry,
} from './proc-net.js';
export {
  DEFAULT_PUBLISH_POLICY,
  isLargeChange,
  LoadTracker,
  shouldPublish,
  type LoadDetails,
  type LoadTrackerEvents,
  type LoadTrackerOptions,
  type PublishPolicy,
  type UtilizationSource,
} from './tracker.js';
