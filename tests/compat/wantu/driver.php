<?php
/*
 * Runs Wantu PHP SDK calls, as an application would make them, and prints what the SDK returned.
 *
 *   php driver.php <sdk root>  < steps.json  > results.json
 *
 * stdin: {"ak", "sk", "namespace", "steps": [{"op": <AlibabaImage method>, ...}]}. Each step's
 * arguments are given by name; "policy" and "option" build the SDK's UploadPolicy / UploadOption;
 * "keep" stores the step's UploadOption under a name and "use" takes a stored one (multi-part
 * uploads carry their ids and parts list in it); "data_b64" is data, "file" a path. stdout: one
 * result per step: what the SDK method returned, or {"exception": class, "message", "code"}.
 */

namespace XiaohuiLam\LaravelFilesystem\Wantu {
    // The SDK throws this on a failed upload; it lives in the author's Laravel adapter package.
    class UploadException extends \Exception
    {
    }
}

namespace {
    use AliMedia\AlibabaImage;
    use AliMedia\Utils\ManageOption;
    use AliMedia\Utils\MediaEncodeOption;
    use AliMedia\Utils\SnapShotOption;
    use AliMedia\Utils\UploadOption;
    use AliMedia\Utils\UploadPolicy;

    $root = $argv[1];
    spl_autoload_register(function ($class) use ($root) {
        if (strpos($class, 'AliMedia\\') !== 0) {
            return;
        }
        $path = $root . '/src/' . str_replace('\\', '/', substr($class, strlen('AliMedia\\'))) . '.php';
        if (is_file($path)) {
            require $path;
        }
    });

    $input = json_decode(stream_get_contents(STDIN), true);
    $image = new AlibabaImage($input['ak'], $input['sk'], $input['namespace']);
    $kept = array();
    $results = array();

    function make_option($spec, &$kept)
    {
        if (isset($spec['use'])) {
            $option = $kept[$spec['use']];
        } else {
            $option = new UploadOption();
        }
        foreach (isset($spec['option']) ? $spec['option'] : array() as $name => $value) {
            if ($name === 'partNumber') {
                $option->setPartNumber($value);
            } elseif ($name === 'md5') {
                $option->setMd5($value);
            } else {
                $option->{$name} = $value;
            }
        }
        if (isset($spec['keep'])) {
            $kept[$spec['keep']] = $option;
        }
        return $option;
    }

    foreach ($input['steps'] as $step) {
        $op = $step['op'];
        try {
            $policy = isset($step['policy']) ? new UploadPolicy($step['policy']) : null;
            $data = isset($step['data_b64']) ? base64_decode($step['data_b64']) : null;
            switch ($op) {
                case 'upload':
                    $result = $image->upload($step['file'], $policy, make_option($step, $kept));
                    break;
                case 'uploadData':
                    $result = $image->uploadData($data, $policy, make_option($step, $kept));
                    break;
                case 'multipartInit':
                    $result = $image->multipartInit($step['file'], $policy, make_option($step, $kept));
                    break;
                case 'multipartInitByData':
                    $result = $image->multipartInitByData($data, $policy, make_option($step, $kept));
                    break;
                case 'multipartUpload':
                    $result = $image->multipartUpload($step['file'], $policy, make_option($step, $kept));
                    break;
                case 'multipartUploadByData':
                    $result = $image->multipartUploadByData($data, $policy, make_option($step, $kept));
                    break;
                case 'multipartComplete':
                    $result = $image->multipartComplete($policy, make_option($step, $kept));
                    break;
                case 'multipartCancel':
                    $result = $image->multipartCancel($policy, make_option($step, $kept));
                    break;
                case 'existsFile':
                case 'getFileInfo':
                case 'deleteFile':
                    $result = $image->{$op}($step['namespace'], $step['dir'], $step['name']);
                    break;
                case 'renameFile':
                    $result = $image->renameFile(
                        $step['namespace'],
                        $step['dir'],
                        $step['name'],
                        $step['newDir'],
                        $step['newName']
                    );
                    break;
                case 'listFiles':
                case 'listDirs':
                    $result = $image->{$op}($step['namespace'], $step['dir'], $step['page'], $step['pageSize']);
                    break;
                case 'existsFolder':
                case 'createDir':
                case 'deleteDir':
                    $result = $image->{$op}($step['namespace'], $step['dir']);
                    break;
                case 'mediaEncode':
                    $option = new MediaEncodeOption();
                    $option->setInputResource($step['input'][0], $step['input'][1], $step['input'][2]);
                    $option->setOutputResource($step['output'][0], $step['output'][1], $step['output'][2]);
                    $option->setEncodeTemplate($step['encodeTemplate']);
                    $option->usePreset = $step['usePreset'];
                    $option->force = isset($step['force']) ? $step['force'] : 0;
                    if (isset($step['notifyUrl'])) {
                        $option->setNotifyUrl($step['notifyUrl']);
                    }
                    if (isset($step['seek'])) {
                        $option->setSeek($step['seek']);
                    }
                    if (isset($step['duration'])) {
                        $option->setDuration($step['duration']);
                    }
                    $result = $image->mediaEncode($option);
                    break;
                case 'videoSnapshot':
                    $option = new SnapShotOption();
                    $option->setInputResource($step['input'][0], $step['input'][1], $step['input'][2]);
                    $option->setOutputResource($step['output'][0], $step['output'][1], $step['output'][2]);
                    $option->setTime($step['time']);
                    $result = $image->videoSnapshot($option);
                    break;
                case 'mediaEncodeQuery':
                case 'vSnapshotQuery':
                    $result = $image->{$op}($step['taskId']);
                    break;
                case 'scanPorn':
                    $option = new ManageOption($input['namespace']);
                    foreach ($step['resources'] as $r) {
                        $option->addResource($r[0], $r[1], $r[2]);
                    }
                    $result = $image->scanPorn($option);
                    break;
                case 'pornFeedback':
                    $option = new ManageOption($input['namespace']);
                    foreach ($step['items'] as $f) {
                        $option->addPornFbInfo(
                            $f['namespace'],
                            $f['dir'],
                            $f['name'],
                            $f['type'],
                            $f['wrong'],
                            isset($f['score']) ? $f['score'] : null
                        );
                    }
                    $result = $image->pornFeedback($option);
                    break;
                default:
                    throw new \InvalidArgumentException("unknown step $op");
            }
        } catch (\Throwable $e) {
            $result = array(
                'exception' => get_class($e),
                'message' => $e->getMessage(),
                'code' => $e->getCode(),
            );
        }
        $results[] = $result;
    }
    echo json_encode($results);
}
