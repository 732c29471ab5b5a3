/**
 * BuildKit's build checks (frontend/dockerfile/linter/ruleset.go): rule names, descriptions, doc
 * links and message formats are BuildKit's, so `hoist build --check` reads like `docker build
 * --check`. `InvalidBaseImagePlatform` has no doc page in BuildKit (no URL); the experimental
 * `InvalidDefinitionDescription` runs only when enabled with `experimental=`.
 */
export interface RuleInfo {
  name: RuleName;
  description: string;
  url?: string;
  experimental?: boolean;
}

export const RULE_NAMES = [
  'StageNameCasing', 'FromAsCasing', 'NoEmptyContinuation', 'ConsistentInstructionCasing', 'DuplicateStageName',
  'ReservedStageName', 'JSONArgsRecommended', 'MaintainerDeprecated', 'UndefinedArgInFrom', 'WorkdirRelativePath',
  'UndefinedVar', 'MultipleInstructionsDisallowed', 'LegacyKeyValueFormat', 'InvalidBaseImagePlatform',
  'RedundantTargetPlatform', 'SecretsUsedInArgOrEnv', 'InvalidDefaultArgInFrom', 'FromPlatformFlagConstDisallowed',
  'CopyIgnoredFile', 'InvalidDefinitionDescription', 'ExposeProtoCasing', 'ExposeInvalidFormat',
] as const;

export type RuleName = (typeof RULE_NAMES)[number];

const DESCRIPTIONS: Record<RuleName, string> = {
  StageNameCasing: 'Stage names should be lowercase',
  FromAsCasing: "The 'as' keyword should match the case of the 'from' keyword",
  NoEmptyContinuation: 'Empty continuation lines will become errors in a future release',
  ConsistentInstructionCasing: 'All commands within the Dockerfile should use the same casing (either upper or lower)',
  DuplicateStageName: 'Stage names should be unique',
  ReservedStageName: 'Reserved words should not be used as stage names',
  JSONArgsRecommended: 'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals',
  MaintainerDeprecated: 'The MAINTAINER instruction is deprecated, use a label instead to define an image author',
  UndefinedArgInFrom: 'FROM command must use declared ARGs',
  WorkdirRelativePath: 'Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes',
  UndefinedVar: 'Variables should be defined before their use',
  MultipleInstructionsDisallowed: 'Multiple instructions of the same type should not be used in the same stage',
  LegacyKeyValueFormat: 'Legacy key/value format with whitespace separator should not be used',
  InvalidBaseImagePlatform: 'Base image platform does not match expected target platform',
  RedundantTargetPlatform: 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior',
  SecretsUsedInArgOrEnv: 'Sensitive data should not be used in the ARG or ENV commands',
  InvalidDefaultArgInFrom: 'Default value for global ARG results in an empty or invalid base image name',
  FromPlatformFlagConstDisallowed: 'FROM --platform flag should not use a constant value',
  CopyIgnoredFile: 'Attempting to Copy file that is excluded by .dockerignore',
  InvalidDefinitionDescription:
    'Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.',
  ExposeProtoCasing: 'Protocol in EXPOSE instruction should be lowercase',
  ExposeInvalidFormat: 'IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release',
};

/** `StageNameCasing` -> `stage-name-casing` (BuildKit's doc slugs; `JSONArgs…` -> `json-args-…`). */
function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2').toLowerCase();
}

export function ruleInfo(name: RuleName): RuleInfo {
  const info: RuleInfo = { name, description: DESCRIPTIONS[name] };
  if (name !== 'InvalidBaseImagePlatform') info.url = `https://docs.docker.com/go/dockerfile/rule/${kebab(name)}/`;
  if (name === 'InvalidDefinitionDescription') info.experimental = true;
  return info;
}

export function isRuleName(s: string): s is RuleName {
  return (RULE_NAMES as readonly string[]).includes(s);
}

const q = (s: string): string => JSON.stringify(s);

/** The message formats, argument for argument as in ruleset.go (`%q` is a Go-quoted string). */
export const MESSAGES = {
  StageNameCasing: (stage: string) => `Stage name '${stage}' should be lowercase`,
  FromAsCasing: (from: string, as: string) => `'${as}' and '${from}' keywords' casing do not match`,
  NoEmptyContinuation: () => 'Empty continuation line',
  ConsistentInstructionCasing: (cmd: string, casing: string) => `Command '${cmd}' should match the case of the command majority (${casing})`,
  DuplicateStageName: (stage: string) => `Duplicate stage name ${q(stage)}, stage names should be unique`,
  ReservedStageName: (stage: string) => `Stage name should not use the same name as reserved stage ${q(stage)}`,
  JSONArgsRecommended: (ins: string) => `JSON arguments recommended for ${ins} to prevent unintended behavior related to OS signals`,
  MaintainerDeprecated: () => 'Maintainer instruction is deprecated in favor of using label',
  UndefinedArgInFrom: (arg: string, suggest: string) => `FROM argument '${arg}' is not declared${suggest ? ` (did you mean ${suggest}?)` : ''}`,
  WorkdirRelativePath: (dir: string) => `Relative workdir ${q(dir)} can have unexpected results if the base image changes`,
  UndefinedVar: (v: string, suggest: string) => `Usage of undefined variable '$${v}'${suggest ? ` (did you mean $${suggest}?)` : ''}`,
  MultipleInstructionsDisallowed: (ins: string) => `Multiple ${ins} instructions should not be used in the same stage because only the last one will be used`,
  LegacyKeyValueFormat: (cmd: string) => `"${cmd} key=value" should be used instead of legacy "${cmd} key value" format`,
  InvalidBaseImagePlatform: (image: string, expected: string, actual: string) => `Base image ${image} was pulled with platform ${q(actual)}, expected ${q(expected)} for current build`,
  RedundantTargetPlatform: (v: string) => `Setting platform to predefined ${v} in FROM is redundant as this is the default behavior`,
  SecretsUsedInArgOrEnv: (ins: string, key: string) => `Do not use ARG or ENV instructions for sensitive data (${ins} ${q(key)})`,
  InvalidDefaultArgInFrom: (base: string) => `Default value for ARG ${base} results in empty or invalid base image name`,
  FromPlatformFlagConstDisallowed: (p: string) => `FROM --platform flag should not use constant value ${q(p)}`,
  CopyIgnoredFile: (cmd: string, file: string) => `Attempting to ${cmd} file ${q(file)} that is excluded by .dockerignore`,
  InvalidDefinitionDescription: (ins: string, name: string) => `Comment for ${ins} should follow the format: \`# ${name} <description>\``,
  ExposeProtoCasing: (port: string) => `Defined protocol '${port}' in EXPOSE instruction should be lowercase`,
  ExposeInvalidFormat: (port: string) => `EXPOSE instruction should not define an IP address or host-port mapping, found '${port}'`,
} satisfies Record<RuleName, (...a: string[]) => string>;
