import { Ajv, type Options, type ValidateFunction } from 'ajv';
import { specSchema } from './schema.js';

/**
 * The spec's schema validator. useDefaults: ajv writes the schema's defaults into the document, the one place
 * defaults come from. The CLI bundle (scripts/bundle.js) replaces this module with the same validator
 * precompiled at build time (ajv standalone code, from SPEC_AJV_OPTIONS and the same schema file), so a
 * command does not compile the schema at start-up.
 */
export const SPEC_AJV_OPTIONS: Options = { allErrors: true, useDefaults: true, strict: true, strictRequired: false, verbose: true };

export const validateSchema: ValidateFunction = new Ajv(SPEC_AJV_OPTIONS).compile(specSchema);
